package rootfs

import (
	"bufio"
	"io"
	"path"
	"strconv"
	"strings"
)

// maxIDFile bounds how much of an image's etc/passwd or etc/group is read.
const maxIDFile = 16 << 20

// userLookup resolves user names against etc/passwd in a flattened image:
// the user's uid and primary gid.
func userLookup(t *Tree) func(name string) (uid, gid uint32, ok bool) {
	return func(name string) (uint32, uint32, bool) {
		f := idFields(t, "etc/passwd", name)
		if len(f) < 4 {
			return 0, 0, false
		}
		uid, err1 := strconv.ParseUint(f[2], 10, 32)
		gid, err2 := strconv.ParseUint(f[3], 10, 32)
		if err1 != nil || err2 != nil {
			return 0, 0, false
		}
		return uint32(uid), uint32(gid), true
	}
}

// groupLookup resolves group names against etc/group in a flattened image.
func groupLookup(t *Tree) func(name string) (gid uint32, ok bool) {
	return func(name string) (uint32, bool) {
		f := idFields(t, "etc/group", name)
		if len(f) < 3 {
			return 0, false
		}
		gid, err := strconv.ParseUint(f[2], 10, 32)
		if err != nil {
			return 0, false
		}
		return uint32(gid), true
	}
}

// idFields returns the colon-separated fields of the line for name in the
// passwd-style file at p, or nil.
func idFields(t *Tree, p, name string) []string {
	e := followFile(t, p)
	if e == nil || name == "" {
		return nil
	}
	rc, err := e.Open()
	if err != nil {
		return nil
	}
	defer rc.Close()
	sc := bufio.NewScanner(io.LimitReader(rc, maxIDFile))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		if f := strings.Split(line, ":"); f[0] == name {
			return f
		}
	}
	return nil
}

// followFile returns the regular file at p, following symbolic links
// inside the tree (relative to its root) a few times.
func followFile(t *Tree, p string) *Entry {
	for range 8 {
		e := t.entries[p]
		if e == nil {
			return nil
		}
		switch e.Kind {
		case KindFile, KindHardlink:
			return e
		case KindSymlink:
			target := e.Link
			if !path.IsAbs(target) {
				target = path.Join(path.Dir(p), target)
			}
			var ok bool
			if p, ok = Clean(path.Clean("/" + target)); !ok {
				return nil
			}
		default:
			return nil
		}
	}
	return nil
}
