package rootfs

import (
	"fmt"
	"io"
	"path"

	"github.com/bulkhead-dev/bulkhead/builder/resolve"
)

// Flatten applies every layer of img, bottom first, to a new tree, with no
// fix-ups: the image's content as it is. The build uses it to read single
// files out of tool images (the boot loader of a disk image).
func Flatten(img *resolve.Image, opts ...Option) (*Tree, error) {
	o, err := newOptions(opts)
	if err != nil {
		return nil, fmt.Errorf("flattening %s: %w", img.Ref, err)
	}
	return flatten(img, img.Ref, fixNone, o)
}

// ReadFile returns the content of the regular file at p, following
// symbolic links inside the tree (at most maxLinkDepth of them).
func (t *Tree) ReadFile(p string) ([]byte, error) {
	name, ok := Clean(p)
	if !ok {
		return nil, fmt.Errorf("%s: path escapes the root", p)
	}
	for range 16 {
		e := t.Get(name)
		switch {
		case e == nil:
			return nil, fmt.Errorf("%s: no such file", p)
		case e.Kind == KindSymlink:
			target := e.Link
			if !path.IsAbs(target) {
				target = path.Join(path.Dir(name), target)
			}
			if name, ok = Clean(target); !ok {
				return nil, fmt.Errorf("%s: link escapes the root", p)
			}
			continue
		case e.Kind == KindHardlink:
			if name, ok = Clean(e.Link); !ok {
				return nil, fmt.Errorf("%s: link escapes the root", p)
			}
			continue
		case e.Kind != KindFile:
			return nil, fmt.Errorf("%s: not a regular file", p)
		}
		rc, err := e.Open()
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		return io.ReadAll(rc)
	}
	return nil, fmt.Errorf("%s: too many links", p)
}
