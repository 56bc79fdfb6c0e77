package rootimg

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"time"

	"github.com/bulkhead-dev/bulkhead/builder/rootfs"
)

// node is one entry as the EROFS writer sees it.
type node struct {
	path     string // tree path, "" for the root
	mode     fs.FileMode
	size     int64
	uid, gid uint32
	mtime    int64
	nlink    uint32
	rdev     uint32
	link     string // symlink target
	xattrs   map[string]string
	entry    *rootfs.Entry // for regular file contents; nil for none
	children []*node
}

// hardlink is a path whose directory entry must point at target's inode.
type hardlink struct{ path, target string }

// treeFS presents a rootfs.Tree as an fs.FS (with ReadDir, Stat and
// ReadLink) whose FileInfo.Sys carries ownership, times, link counts and
// device numbers, which is what erofs.Writer.CopyFrom reads. File contents
// open lazily and close at EOF, so only one is open at a time.
type treeFS struct {
	ctx        context.Context
	nodes      map[string]*node
	hardlinks  []hardlink
	withXattrs []*node
	added      []string
}

func newTreeFS(ctx context.Context, t *rootfs.Tree, epoch int64) (*treeFS, error) {
	tf := &treeFS{ctx: ctx, nodes: map[string]*node{}}
	var links []*rootfs.Entry
	err := t.Walk(func(e *rootfs.Entry) error {
		if e.Kind == rootfs.KindHardlink {
			links = append(links, e)
			return nil
		}
		n, err := newNode(e)
		if err != nil {
			return err
		}
		return tf.add(n)
	})
	if err != nil {
		return nil, err
	}
	for _, mp := range MountPoints {
		if err := tf.ensureDir(mp, epoch); err != nil {
			return nil, err
		}
	}
	for _, e := range links {
		if err := tf.addHardlink(t, e); err != nil {
			return nil, err
		}
	}
	tf.finish()
	return tf, nil
}

func newNode(e *rootfs.Entry) (*node, error) {
	n := &node{
		path: e.Path, mode: fs.FileMode(e.Mode & 0o777), uid: uint32(e.UID), gid: uint32(e.GID),
		mtime: e.ModTime, nlink: 1, xattrs: e.Xattrs,
	}
	if e.UID < 0 || e.GID < 0 {
		return nil, fmt.Errorf("/%s: negative owner %d:%d", e.Path, e.UID, e.GID)
	}
	n.mode |= specialBits(e.Mode)
	switch e.Kind {
	case rootfs.KindFile:
		n.size, n.entry = e.Size, e
	case rootfs.KindDir:
		n.mode |= fs.ModeDir
	case rootfs.KindSymlink:
		n.mode |= fs.ModeSymlink
		n.link, n.size = e.Link, int64(len(e.Link))
	case rootfs.KindCharDev:
		n.mode |= fs.ModeDevice | fs.ModeCharDevice
		n.rdev = encodeDev(e.Major, e.Minor)
	case rootfs.KindBlockDev:
		n.mode |= fs.ModeDevice
		n.rdev = encodeDev(e.Major, e.Minor)
	case rootfs.KindFIFO:
		n.mode |= fs.ModeNamedPipe
	case rootfs.KindSocket:
		n.mode |= fs.ModeSocket
	default:
		return nil, fmt.Errorf("/%s: unknown entry kind %d", e.Path, e.Kind)
	}
	if e.Kind == rootfs.KindSymlink && e.Link == "" {
		return nil, fmt.Errorf("/%s: symlink without target", e.Path)
	}
	return n, nil
}

func specialBits(m uint32) fs.FileMode {
	var out fs.FileMode
	if m&0o4000 != 0 {
		out |= fs.ModeSetuid
	}
	if m&0o2000 != 0 {
		out |= fs.ModeSetgid
	}
	if m&0o1000 != 0 {
		out |= fs.ModeSticky
	}
	return out
}

// encodeDev is the kernel's new_encode_dev, the form EROFS stores.
func encodeDev(major, minor uint32) uint32 {
	return minor&0xff | major<<8 | (minor&^0xff)<<12
}

func (tf *treeFS) add(n *node) error {
	if n.path != "" {
		parent := tf.nodes[dirOf(n.path)]
		if parent == nil || !parent.mode.IsDir() {
			return fmt.Errorf("/%s: parent is not a directory", n.path)
		}
		parent.children = append(parent.children, n)
	}
	tf.nodes[n.path] = n
	return nil
}

// ensureDir adds the root directory p (a mount point) if the tree lacks it.
func (tf *treeFS) ensureDir(p string, epoch int64) error {
	if n := tf.nodes[p]; n != nil {
		if !n.mode.IsDir() {
			return fmt.Errorf("mount point /%s is not a directory", p)
		}
		return nil
	}
	tf.added = append(tf.added, "/"+p)
	return tf.add(&node{path: p, mode: fs.ModeDir | 0o755, mtime: epoch, nlink: 1})
}

// addHardlink adds e as a stand-in of its target's type and no data; once
// the image is written its directory entry is pointed at the target's inode
// (see linkHard).
func (tf *treeFS) addHardlink(t *rootfs.Tree, e *rootfs.Entry) error {
	target := e.Link
	for range 40 {
		te := t.Get(target)
		if te == nil || te.Kind != rootfs.KindHardlink {
			break
		}
		target = te.Link
	}
	tn := tf.nodes[target]
	if tn == nil || tn.mode.IsDir() || target == e.Path {
		return fmt.Errorf("/%s: bad hard link target /%s", e.Path, target)
	}
	tn.nlink++
	n := *tn
	n.path, n.size, n.entry, n.xattrs, n.children = e.Path, 0, nil, nil, nil
	if n.mode&fs.ModeSymlink != 0 {
		n.size = int64(len(n.link))
	}
	tf.hardlinks = append(tf.hardlinks, hardlink{path: e.Path, target: target})
	return tf.add(&n)
}

// finish sorts directories, counts their links and lists xattr holders.
func (tf *treeFS) finish() {
	keys := make([]string, 0, len(tf.nodes))
	for k := range tf.nodes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		n := tf.nodes[k]
		if len(n.xattrs) > 0 {
			tf.withXattrs = append(tf.withXattrs, n)
		}
		if !n.mode.IsDir() {
			continue
		}
		sort.Slice(n.children, func(i, j int) bool { return n.children[i].path < n.children[j].path })
		n.nlink = 2
		for _, c := range n.children {
			if c.mode.IsDir() {
				n.nlink++
			}
		}
	}
}

func dirOf(p string) string {
	d := path.Dir(p)
	if d == "." {
		return ""
	}
	return d
}

func (tf *treeFS) lookup(op, name string) (*node, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	key := name
	if name == "." {
		key = ""
	}
	n := tf.nodes[key]
	if n == nil {
		return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
	}
	return n, nil
}

// Open opens a node; a regular file's contents open on first read.
func (tf *treeFS) Open(name string) (fs.File, error) {
	n, err := tf.lookup("open", name)
	if err != nil {
		return nil, err
	}
	return &file{ctx: tf.ctx, n: n}, nil
}

// Stat implements fs.StatFS.
func (tf *treeFS) Stat(name string) (fs.FileInfo, error) {
	n, err := tf.lookup("stat", name)
	if err != nil {
		return nil, err
	}
	return info{n}, nil
}

// ReadDir implements fs.ReadDirFS.
func (tf *treeFS) ReadDir(name string) ([]fs.DirEntry, error) {
	n, err := tf.lookup("readdir", name)
	if err != nil {
		return nil, err
	}
	if !n.mode.IsDir() {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrInvalid}
	}
	out := make([]fs.DirEntry, len(n.children))
	for i, c := range n.children {
		out[i] = fs.FileInfoToDirEntry(info{c})
	}
	return out, nil
}

// ReadLink returns a symlink's target.
func (tf *treeFS) ReadLink(name string) (string, error) {
	n, err := tf.lookup("readlink", name)
	if err != nil {
		return "", err
	}
	return n.link, nil
}

// info is a node's fs.FileInfo.
type info struct{ n *node }

func (i info) Name() string {
	if i.n.path == "" {
		return "."
	}
	return path.Base(i.n.path)
}
func (i info) Size() int64        { return i.n.size }
func (i info) Mode() fs.FileMode  { return i.n.mode }
func (i info) ModTime() time.Time { return time.Unix(i.n.mtime, 0) }
func (i info) IsDir() bool        { return i.n.mode.IsDir() }
func (i info) Sys() any           { return sysOf(i.n) }

// file reads a node's contents, opening them on the first Read and closing
// them at EOF.
type file struct {
	ctx  context.Context
	n    *node
	rc   io.ReadCloser
	done bool
}

func (f *file) Stat() (fs.FileInfo, error) { return info{f.n}, nil }

func (f *file) Read(p []byte) (int, error) {
	if f.done || f.n.entry == nil {
		return 0, io.EOF
	}
	if err := f.ctx.Err(); err != nil {
		return 0, err
	}
	if f.rc == nil {
		rc, err := f.n.entry.Open()
		if err != nil {
			return 0, fmt.Errorf("opening /%s: %w", f.n.path, err)
		}
		f.rc = rc
	}
	n, err := f.rc.Read(p)
	if err == io.EOF {
		f.done = true
		f.rc.Close()
		f.rc = nil
	}
	return n, err
}

func (f *file) Close() error {
	if f.rc == nil {
		return nil
	}
	err := f.rc.Close()
	f.rc = nil
	return err
}
