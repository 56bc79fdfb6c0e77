// Package rootfs assembles a host's root file system as an in-memory tree of
// metadata. File contents stay where they are (an uncompressed layer in the
// content store, addressed by offset, or a small in-memory buffer) until an
// output writer streams them; nothing is written to the build machine.
package rootfs

import (
	"bytes"
	"io"
	"maps"
	"os"
	"path"
	"sort"
	"strings"
)

// Kind is the type of a tree entry.
type Kind uint8

// Entry kinds.
const (
	KindFile Kind = iota
	KindDir
	KindSymlink
	KindHardlink
	KindCharDev
	KindBlockDev
	KindFIFO
	KindSocket
)

// Content is where a regular file's bytes live: either Data, or Size bytes at
// Offset in the file at Blob (an uncompressed layer in the store).
type Content struct {
	Data   []byte
	Blob   string
	Offset int64
}

// Entry is one node of the tree. Path is clean and relative ("etc/hosts");
// the root itself is "".
type Entry struct {
	Path  string
	Kind  Kind
	Mode  uint32 // permission bits plus setuid, setgid, sticky (07777)
	UID   int
	GID   int
	Size  int64
	Link  string // symlink target, or hard link target path (relative, clean)
	Major uint32
	Minor uint32
	// ModTime in Unix seconds, already clamped to SOURCE_DATE_EPOCH.
	ModTime int64
	Xattrs  map[string]string
	Content Content
	// Origin says where the entry came from: "image@sha256:...#layer" or
	// "spec:host.yml:12:5" or "bulkhead". Used by reports.
	Origin string
}

// Copy returns a copy of e that shares nothing changeable with it (file
// contents are never changed in place).
func (e *Entry) Copy() *Entry {
	c := *e
	c.Xattrs = maps.Clone(e.Xattrs)
	return &c
}

// Open returns a reader of a regular file's contents.
func (e *Entry) Open() (io.ReadCloser, error) {
	if e.Content.Blob == "" {
		return io.NopCloser(bytes.NewReader(e.Content.Data)), nil
	}
	f, err := os.Open(e.Content.Blob)
	if err != nil {
		return nil, err
	}
	return &sectionCloser{io.NewSectionReader(f, e.Content.Offset, e.Size), f}, nil
}

// ReaderAt returns random access to a regular file's contents, which the
// caller closes.
func (e *Entry) ReaderAt() (*io.SectionReader, io.Closer, error) {
	rc, err := e.Open()
	if err != nil {
		return nil, nil, err
	}
	if sc, ok := rc.(*sectionCloser); ok {
		return sc.SectionReader, sc, nil
	}
	return io.NewSectionReader(bytes.NewReader(e.Content.Data), 0, int64(len(e.Content.Data))), rc, nil
}

type sectionCloser struct {
	*io.SectionReader
	f *os.File
}

func (s *sectionCloser) Close() error { return s.f.Close() }

// Tree is a root file system under construction.
type Tree struct {
	entries map[string]*Entry
	// kids indexes entries by parent directory ("" is the root), so a
	// subtree is removed in time proportional to its size. Change entries
	// only through set, del and prune, which keep it.
	kids map[string]map[string]struct{}
}

// New returns a tree holding only the root directory.
func New() *Tree {
	t := &Tree{entries: map[string]*Entry{}, kids: map[string]map[string]struct{}{}}
	t.entries[""] = &Entry{Path: "", Kind: KindDir, Mode: 0o755, Origin: "bulkhead"}
	return t
}

// parentOf is the path of p's directory; the root's children have "".
func parentOf(p string) string {
	if d := path.Dir(p); d != "." {
		return d
	}
	return ""
}

// set stores e at e.Path, whose parent directory must exist.
func (t *Tree) set(e *Entry) {
	if _, ok := t.entries[e.Path]; !ok && e.Path != "" {
		dir := parentOf(e.Path)
		if t.kids[dir] == nil {
			t.kids[dir] = map[string]struct{}{}
		}
		t.kids[dir][e.Path] = struct{}{}
	}
	t.entries[e.Path] = e
}

// del removes p and everything below it ("" empties the tree, root kept).
func (t *Tree) del(p string) {
	for k := range t.kids[p] {
		t.del(k)
	}
	delete(t.kids, p)
	if p == "" {
		return
	}
	delete(t.entries, p)
	if sib := t.kids[parentOf(p)]; sib != nil {
		delete(sib, p)
	}
}

// prune removes every entry below dir that keep refuses, with what lies
// below it, except directories that still hold an entry keep accepts. It
// visits only the entries below dir.
func (t *Tree) prune(dir string, keep func(string) bool) {
	for k := range t.kids[dir] {
		if keep(k) {
			t.prune(k, keep)
			continue
		}
		t.prune(k, keep)
		if len(t.kids[k]) == 0 {
			t.del(k)
		}
	}
}

// Clean turns p into the tree's path form: relative, cleaned, no "..".
// ok is false if p would escape the root.
func Clean(p string) (string, bool) {
	p = strings.TrimLeft(p, "/")
	if p == "" || p == "." {
		return "", true
	}
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			return "", false
		}
	}
	c := path.Clean(p)
	if c == "." {
		c = ""
	}
	return c, true
}

// Get returns the entry at p, or nil.
func (t *Tree) Get(p string) *Entry { return t.entries[p] }

// Len is the number of entries, root included.
func (t *Tree) Len() int { return len(t.entries) }

// Put adds or replaces e. Missing parent directories are created with mode
// 0755, owned by root, with the same ModTime and Origin as e.
func (t *Tree) Put(e *Entry) {
	t.mkdirAll(path.Dir(e.Path), e)
	if old := t.entries[e.Path]; old != nil && old.Kind == KindDir && e.Kind != KindDir {
		t.Remove(e.Path)
	}
	t.set(e)
}

func (t *Tree) mkdirAll(dir string, like *Entry) {
	if dir == "." || dir == "" {
		return
	}
	if old, ok := t.entries[dir]; ok && old.Kind == KindDir {
		return
	}
	if old := t.entries[dir]; old != nil {
		t.del(dir) // a file or link where a directory must be
	}
	t.mkdirAll(path.Dir(dir), like)
	t.set(&Entry{Path: dir, Kind: KindDir, Mode: 0o755, ModTime: like.ModTime, Origin: like.Origin})
}

// Clone returns a copy of t whose entries are copies of t's: changing
// either tree, or an entry of one, leaves the other as it was. File
// contents (Content.Data) are shared; nothing writes to them.
func (t *Tree) Clone() *Tree {
	c := &Tree{entries: make(map[string]*Entry, len(t.entries)), kids: make(map[string]map[string]struct{}, len(t.kids))}
	for p, e := range t.entries {
		c.entries[p] = e.Copy()
	}
	for dir, kids := range t.kids {
		ck := make(map[string]struct{}, len(kids))
		for k := range kids {
			ck[k] = struct{}{}
		}
		c.kids[dir] = ck
	}
	return c
}

// Remove deletes p and everything below it.
func (t *Tree) Remove(p string) { t.del(p) }

// Children removes nothing; it lists the direct children of dir, sorted.
func (t *Tree) Children(dir string) []*Entry {
	out := make([]*Entry, 0, len(t.kids[dir]))
	for k := range t.kids[dir] {
		out = append(out, t.entries[k])
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// Walk calls fn for every entry in a deterministic order in which each
// directory comes before its contents: sorted by path components.
func (t *Tree) Walk(fn func(e *Entry) error) error {
	keys := make([]string, 0, len(t.entries))
	for k := range t.entries {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return lessPath(keys[i], keys[j]) })
	for _, k := range keys {
		if err := fn(t.entries[k]); err != nil {
			return err
		}
	}
	return nil
}

// lessPath orders paths component by component, so "a/b" sorts before "a.b"
// and a directory always precedes its contents.
func lessPath(a, b string) bool {
	for {
		ai := strings.IndexByte(a, '/')
		bi := strings.IndexByte(b, '/')
		ah, bh := a, b
		if ai >= 0 {
			ah = a[:ai]
		}
		if bi >= 0 {
			bh = b[:bi]
		}
		if ah != bh {
			return ah < bh
		}
		if ai < 0 || bi < 0 {
			return ai < 0 && bi >= 0
		}
		a, b = a[ai+1:], b[bi+1:]
	}
}
