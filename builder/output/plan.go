package output

import (
	"bytes"
	"context"
	"fmt"
	"path"

	"github.com/bulkhead-dev/bulkhead/builder/rootfs"
)

// maxLinkDepth bounds how many hard links plan follows to find a target.
const maxLinkDepth = 16

// member is one archive member in walk order. Members that are hard links
// of one regular file share an inode: the same ino and nlink, and the
// metadata and content of the file they name.
type member struct {
	path  string        // path in the archive ("" is the root)
	e     *rootfs.Entry // the inode's metadata and content
	kind  rootfs.Kind   // never KindHardlink
	ino   uint64        // assigned in walk order, from 1
	nlink uint32
	first string // path of the inode's first member in walk order
	last  bool   // the inode's last member in walk order
}

// plan lists t's members in walk order, resolving hard links: a link whose
// target is still the same regular file joins the target's inode; any other
// link becomes a copy of what it names (a copy of its own recorded content
// when the target was replaced or removed).
func plan(ctx context.Context, t *rootfs.Tree) ([]member, error) {
	var ms []member
	err := t.Walk(func(e *rootfs.Entry) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		m, err := resolve(t, e)
		if err != nil {
			return fmt.Errorf("%s: %w", e.Path, err)
		}
		ms = append(ms, m)
		return nil
	})
	if err != nil {
		return nil, err
	}
	number(ms)
	return ms, nil
}

// resolve turns e into a member whose kind is not a hard link.
func resolve(t *rootfs.Tree, e *rootfs.Entry) (member, error) {
	m := member{path: e.Path, e: e, kind: e.Kind}
	if e.Kind != rootfs.KindHardlink {
		return m, nil
	}
	target := e
	for range maxLinkDepth {
		next := t.Get(target.Link)
		switch {
		case next == nil || next == e:
			return orphan(e), nil
		case next.Kind == rootfs.KindHardlink:
			target = next
			continue
		case next.Kind == rootfs.KindDir:
			return member{}, fmt.Errorf("hard link to directory %q", target.Link)
		case next.Kind == rootfs.KindFile && !sameContent(e, next):
			return orphan(e), nil
		}
		m.e, m.kind = next, next.Kind
		return m, nil
	}
	return member{}, fmt.Errorf("hard link chain longer than %d", maxLinkDepth)
}

// orphan is a hard link whose target is gone or was replaced: a regular file
// with the link's own recorded metadata and content.
func orphan(e *rootfs.Entry) member {
	return member{path: e.Path, e: e, kind: rootfs.KindFile}
}

func sameContent(a, b *rootfs.Entry) bool {
	if a.Size != b.Size || a.Content.Blob != b.Content.Blob {
		return false
	}
	if a.Content.Blob != "" {
		return a.Content.Offset == b.Content.Offset
	}
	return bytes.Equal(a.Content.Data, b.Content.Data)
}

// number assigns inode numbers in walk order, link counts, and each
// inode's first and last member. Directories count their subdirectories.
func number(ms []member) {
	type inode struct {
		ino   uint64
		first string
		count uint32
		last  int
	}
	files := map[*rootfs.Entry]*inode{}
	subdirs := map[string]uint32{}
	var next uint64 = 1
	for i := range ms {
		m := &ms[i]
		if m.kind == rootfs.KindDir && m.path != "" {
			subdirs[parent(m.path)]++
		}
		if m.kind != rootfs.KindFile {
			m.ino, m.nlink, m.first, m.last = next, 1, m.path, true
			next++
			continue
		}
		n := files[m.e]
		if n == nil {
			n = &inode{ino: next, first: m.path}
			files[m.e] = n
			next++
		}
		n.count++
		n.last = i
		m.ino, m.first = n.ino, n.first
	}
	for i := range ms {
		m := &ms[i]
		switch {
		case m.kind == rootfs.KindDir:
			m.nlink = 2 + subdirs[m.path]
		case m.kind == rootfs.KindFile:
			n := files[m.e]
			m.nlink, m.last = n.count, n.last == i
		}
	}
}

func parent(p string) string {
	d := path.Dir(p)
	if d == "." {
		return ""
	}
	return d
}
