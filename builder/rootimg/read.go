package rootimg

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"

	erofs "github.com/erofs/go-erofs"
	"golang.org/x/sys/unix"

	"github.com/bulkhead-dev/bulkhead/builder/rootfs"
)

// Source is where Read finds a root image: R reads it from its first byte.
// When Blob names the file R reads, at byte Base of that file, the
// contents of the tree's files are references into it, as in the store.
// When the image is in memory, Data holds it (R may then be nil) and the
// contents are slices of Data, not copies. Otherwise Read copies them into
// memory.
type Source struct {
	R    io.ReaderAt
	Blob string
	Base int64
	Data []byte
}

// Read reads the EROFS file system at the start of a root image (the
// verity tree after it is not looked at) into a tree, with each entry's
// kind, mode (set-id and sticky bits included), owner, size, link target,
// device numbers, modification time and content. Hard links become
// rootfs.KindHardlink entries naming the first path of their inode. The
// Origin of every entry is origin. An image from elsewhere may lie: a
// directory reached twice (a loop), more than maxEntries entries, or a
// file that claims more bytes than the image holds is an error.
func Read(src Source, origin string) (t *rootfs.Tree, err error) {
	defer func() {
		// go-erofs trusts the image; a malformed one must not crash scan.
		if r := recover(); r != nil {
			t, err = nil, fmt.Errorf("reading root image: malformed EROFS image: %v", r)
		}
	}()
	if src.R == nil {
		if src.Data == nil {
			return nil, errors.New("reading root image: no source")
		}
		src.R = bytes.NewReader(src.Data)
	}
	fsys, err := erofs.Open(src.R)
	if err != nil {
		return nil, fmt.Errorf("reading root image: %w", err)
	}
	r := reader{src: src, fsys: fsys, origin: origin, t: rootfs.New(), inodes: map[uint64]string{}, dirs: map[uint64]bool{}, size: sizeOf(src)}
	if err := fs.WalkDir(fsys, ".", r.visit); err != nil {
		return nil, fmt.Errorf("reading root image: %w", err)
	}
	return r.t, nil
}

type reader struct {
	src    Source
	fsys   fs.FS
	origin string
	t      *rootfs.Tree
	inodes map[uint64]string // inode number -> first path, for hard links
	dirs   map[uint64]bool   // directory inodes visited, to detect loops
	size   int64             // of the image, -1 when unknown
}

// maxEntries bounds the entries of an image read: far more than a host
// holds, far less than memory allows.
const maxEntries = 4 << 20

// sizeOf is the size of the image src reads, or -1.
func sizeOf(src Source) int64 {
	if src.Data != nil {
		return int64(len(src.Data))
	}
	if s, ok := src.R.(interface{ Size() int64 }); ok {
		return s.Size()
	}
	return -1
}

// stat is what go-erofs's FileInfo offers beyond fs.FileInfo.
type stat interface {
	UID() uint32
	GID() uint32
	Ino() uint64
	Nlink() uint64
	Rdev() uint64
}

type dataRanger interface {
	DataRange() []erofs.DataRange
}

func (r *reader) visit(name string, d fs.DirEntry, err error) error {
	if err != nil {
		return err
	}
	// d.Info may carry only the type bits of the mode; Lstat has all.
	fi, err := r.lstat(name)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	p := name
	if p == "." {
		p = ""
	}
	e := &rootfs.Entry{Path: p, Mode: permBits(fi.Mode()), Size: fi.Size(), ModTime: fi.ModTime().Unix(), Origin: r.origin}
	st, ok := fi.(stat)
	if !ok {
		return fmt.Errorf("%s: no inode information", name)
	}
	e.UID, e.GID = int(st.UID()), int(st.GID())
	if err := r.bound(name, fi, st); err != nil {
		return err
	}
	if err := r.fill(e, name, fi, st); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if p == "" {
		e.Size = 0
	}
	r.t.Put(e)
	return nil
}

// bound refuses a directory seen before (the walk would never end), an
// image with too many entries, and a file larger than the image.
func (r *reader) bound(name string, fi fs.FileInfo, st stat) error {
	switch {
	case r.t.Len() >= maxEntries:
		return fmt.Errorf("more than %d entries", maxEntries)
	case len(name) > 4096:
		return fmt.Errorf("%.64s…: path longer than PATH_MAX", name)
	case fi.IsDir() && r.dirs[st.Ino()]:
		return fmt.Errorf("%s: directory loop (inode %d reached twice)", name, st.Ino())
	case fi.Mode().IsRegular() && r.size >= 0 && fi.Size() > r.size:
		return fmt.Errorf("%s: %d bytes, more than the %d-byte image holds", name, fi.Size(), r.size)
	}
	if fi.IsDir() {
		r.dirs[st.Ino()] = true
	}
	return nil
}

func (r *reader) lstat(name string) (fs.FileInfo, error) {
	if l, ok := r.fsys.(interface {
		Lstat(string) (fs.FileInfo, error)
	}); ok {
		return l.Lstat(name)
	}
	return nil, errors.New("the EROFS reader has no Lstat")
}

// fill sets the kind and what goes with it.
func (r *reader) fill(e *rootfs.Entry, name string, fi fs.FileInfo, st stat) error {
	m := fi.Mode()
	switch {
	case m.IsDir():
		e.Kind, e.Size = rootfs.KindDir, 0
	case m&fs.ModeSymlink != 0:
		target, err := fs.ReadLink(r.fsys, name)
		if err != nil {
			return err
		}
		e.Kind, e.Link, e.Size = rootfs.KindSymlink, target, 0
	case m&fs.ModeDevice != 0:
		e.Kind, e.Size = rootfs.KindBlockDev, 0
		if m&fs.ModeCharDevice != 0 {
			e.Kind = rootfs.KindCharDev
		}
		e.Major, e.Minor = unix.Major(st.Rdev()), unix.Minor(st.Rdev())
	case m&fs.ModeNamedPipe != 0:
		e.Kind, e.Size = rootfs.KindFIFO, 0
	case m&fs.ModeSocket != 0:
		e.Kind, e.Size = rootfs.KindSocket, 0
	case m.IsRegular():
		e.Kind = rootfs.KindFile
		if st.Nlink() > 1 {
			if first, seen := r.inodes[st.Ino()]; seen {
				e.Kind, e.Link = rootfs.KindHardlink, first
				e.Content = r.t.Get(first).Content
				return nil
			}
			r.inodes[st.Ino()] = e.Path
		}
		c, err := r.content(name, fi)
		if err != nil {
			return err
		}
		e.Content = c
	default:
		return fmt.Errorf("unsupported file type %s", m.Type())
	}
	return nil
}

// content refers to a file stored in one piece into the image file or
// slices it out of the image in memory, and reads any other file (inline
// tails, several chunks, holes) into memory.
func (r *reader) content(name string, fi fs.FileInfo) (rootfs.Content, error) {
	if off, ok := r.onePiece(fi); ok {
		switch {
		case r.src.Blob != "":
			return rootfs.Content{Blob: r.src.Blob, Offset: r.src.Base + off}, nil
		case r.src.Data != nil && off+fi.Size() <= int64(len(r.src.Data)):
			return rootfs.Content{Data: r.src.Data[off : off+fi.Size() : off+fi.Size()]}, nil
		}
	}
	if fi.Size() == 0 {
		return rootfs.Content{Data: []byte{}}, nil
	}
	b, err := fs.ReadFile(r.fsys, name)
	if err != nil {
		return rootfs.Content{}, err
	}
	if int64(len(b)) != fi.Size() {
		return rootfs.Content{}, errors.New("short read")
	}
	return rootfs.Content{Data: b}, nil
}

// onePiece returns where in the image a file stored in one contiguous,
// uncompressed piece starts.
func (r *reader) onePiece(fi fs.FileInfo) (int64, bool) {
	dr, ok := fi.(dataRanger)
	if !ok || fi.Size() == 0 {
		return 0, false
	}
	rs := dr.DataRange()
	if len(rs) != 1 || rs[0].Offset < 0 || rs[0].Device != 0 || rs[0].Size != fi.Size() {
		return 0, false
	}
	return rs[0].Offset, true
}

// permBits turns an fs.FileMode into the tree's mode: permissions plus
// set-user-id, set-group-id and sticky bits. go-erofs v0.3.1 leaves the
// inode's own 07000 bits in the low bits of the mode instead of mapping
// them to fs.ModeSetuid and friends; both forms are read.
func permBits(m fs.FileMode) uint32 {
	v := uint32(m) & 0o7777
	if m&fs.ModeSetuid != 0 {
		v |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		v |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		v |= 0o1000
	}
	return v
}
