package rootfs

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"path"
	"strings"

	"github.com/bulkhead-dev/bulkhead/builder/resolve"
)

// OCI image-spec whiteout markers.
const (
	whiteoutPrefix = ".wh."
	whiteoutMeta   = ".wh..wh."
	whiteoutOpaque = ".wh..wh..opq"
	xattrPAXPrefix = "SCHILY.xattr."
	// maxPath is Linux's PATH_MAX: no longer name can exist on a host.
	maxPath = 4096
)

var (
	errEscape  = errors.New("path escapes the root")
	errSparse  = errors.New("sparse files are not supported")
	errNoEntry = errors.New("hard link target does not exist")
)

// ApplyLayer reads the uncompressed layer tar at l.Path and applies it to t
// under prefix ("" is the root): whiteouts remove what lower layers put
// there, every other entry is recorded with its metadata, and a regular
// file's contents stay in the layer file, addressed by offset.
func ApplyLayer(t *Tree, prefix string, l resolve.Layer, opts ...Option) error {
	o, err := newOptions(opts)
	if err != nil {
		return fmt.Errorf("applying layer %s: %w", layerName(l), err)
	}
	p, ok := Clean(prefix)
	if !ok {
		return fmt.Errorf("applying layer %s: prefix %q: %w", layerName(l), prefix, errEscape)
	}
	return applyLayerFile(t, p, l, o)
}

// layerName is how errors name a layer: its digest, or its file.
func layerName(l resolve.Layer) string {
	switch {
	case l.Digest.Hex != "":
		return l.Digest.String()
	case l.DiffID.Hex != "":
		return l.DiffID.String()
	}
	return l.Path
}

// tarSource is a tar archive stored as a contiguous region of a file: a
// layer, or a tar nested inside a layer (a kernel image's kernel.tar).
type tarSource struct {
	blob string      // file the offsets refer to
	r    io.ReaderAt // that file, open
	base int64       // offset of the archive within the file
	size int64       // length of the archive
	name string      // for errors: "layer sha256:…"
}

// applyTar applies the archive in src to t under prefix (already clean).
func applyTar(t *Tree, prefix string, src tarSource, o *options) error {
	cr := newCountingReader(src.r, src.base, src.size)
	tr := tar.NewReader(cr)
	a := &applier{t: t, prefix: prefix, src: src, o: o, added: map[string]bool{}}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading %s: %w", src.name, err)
		}
		if err := a.apply(hdr, cr.pos); err != nil {
			return fmt.Errorf("%s: entry %q: %w", src.name, hdr.Name, err)
		}
	}
}

// countingReader reads the archive for archive/tar and counts the bytes it
// consumes: Next leaves the stream exactly at the start of an entry's data,
// so pos is then the data's offset in the archive. It reads through a
// buffer with ReadAt, and Seek (which the tar reader uses to skip file
// contents) only moves pos, so skipping data costs no system call.
type countingReader struct {
	r      io.ReaderAt
	base   int64 // offset of the archive in r
	size   int64 // length of the archive
	pos    int64 // next byte to read, relative to base
	buf    []byte
	bufOff int64 // archive offset of buf[0]
}

func newCountingReader(r io.ReaderAt, base, size int64) *countingReader {
	return &countingReader{r: r, base: base, size: size, buf: make([]byte, 0, 64<<10)}
}

func (c *countingReader) Read(p []byte) (int, error) {
	if c.pos >= c.size {
		return 0, io.EOF
	}
	if c.pos < c.bufOff || c.pos >= c.bufOff+int64(len(c.buf)) {
		if err := c.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, c.buf[c.pos-c.bufOff:])
	c.pos += int64(n)
	return n, nil
}

// fill reads the buffer from pos on.
func (c *countingReader) fill() error {
	want := min(int64(cap(c.buf)), c.size-c.pos)
	n, err := c.r.ReadAt(c.buf[:want], c.base+c.pos)
	c.buf, c.bufOff = c.buf[:n], c.pos
	if n == 0 {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	return nil
}

func (c *countingReader) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		off += c.pos
	case io.SeekEnd:
		off += c.size
	}
	if off < 0 {
		return 0, errors.New("seek before the start of the archive")
	}
	c.pos = off
	return off, nil
}

// applier applies the entries of one archive.
type applier struct {
	t      *Tree
	prefix string
	src    tarSource
	o      *options
	// added holds the paths this archive put in the tree: whiteouts in the
	// same archive do not hide them (OCI image spec).
	added map[string]bool
}

func (a *applier) apply(hdr *tar.Header, dataOff int64) error {
	if len(hdr.Name) > maxPath || len(hdr.Linkname) > maxPath {
		return errors.New("name longer than PATH_MAX")
	}
	name, ok := Clean(hdr.Name)
	if !ok {
		return errEscape
	}
	dir, base := path.Split(name)
	switch {
	case base == whiteoutOpaque:
		a.opaque(path.Join(a.prefix, dir))
		return nil
	case strings.HasPrefix(base, whiteoutMeta):
		return nil // other AUFS metadata (.wh..wh.plnk, …): not content
	case strings.HasPrefix(base, whiteoutPrefix):
		target := base[len(whiteoutPrefix):]
		if target == "" || target == "." || target == ".." {
			return fmt.Errorf("invalid whiteout")
		}
		a.whiteout(path.Join(a.prefix, dir, target))
		return nil
	}
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil
	}
	e, err := a.entry(hdr, dataOff)
	if err != nil || e == nil {
		return err
	}
	e.Path = path.Join(a.prefix, name)
	if name == "" {
		return a.setRoot(e)
	}
	if n := a.o.limits.Entries; int64(a.t.Len()) >= n && a.t.entries[e.Path] == nil {
		return fmt.Errorf("the root would hold more than %d entries (policy.limits.entries)", n)
	}
	a.put(e)
	return nil
}

// entry turns a header into an entry (without its path). It returns nil
// for headers that add nothing.
func (a *applier) entry(hdr *tar.Header, dataOff int64) (*Entry, error) {
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return nil, errSparse
		}
	}
	e := &Entry{
		Mode:    uint32(hdr.Mode) & 0o7777,
		UID:     hdr.Uid,
		GID:     hdr.Gid,
		ModTime: min(hdr.ModTime.Unix(), a.o.epoch),
		Xattrs:  xattrs(hdr),
		Origin:  a.o.origin,
	}
	if hdr.Uid < 0 || hdr.Gid < 0 || int64(hdr.Uid) > math.MaxUint32 || int64(hdr.Gid) > math.MaxUint32 {
		return nil, fmt.Errorf("owner %d:%d out of range", hdr.Uid, hdr.Gid)
	}
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeRegA:
		return a.file(e, hdr, dataOff)
	case tar.TypeDir:
		e.Kind = KindDir
	case tar.TypeSymlink:
		e.Kind = KindSymlink
		e.Link = hdr.Linkname
	case tar.TypeLink:
		return e, a.hardlink(e, hdr)
	case tar.TypeChar, tar.TypeBlock:
		return e, device(e, hdr)
	case tar.TypeFifo:
		e.Kind = KindFIFO
	case tar.TypeGNUSparse:
		return nil, errSparse
	default:
		return nil, fmt.Errorf("unsupported entry type %q", hdr.Typeflag)
	}
	return e, nil
}

func (a *applier) file(e *Entry, hdr *tar.Header, dataOff int64) (*Entry, error) {
	if hdr.Size < 0 || hdr.Size > a.src.size-dataOff {
		return nil, fmt.Errorf("file data (%d bytes at %d) past the end of the archive", hdr.Size, dataOff)
	}
	e.Kind = KindFile
	e.Size = hdr.Size
	e.Content = Content{Blob: a.src.blob, Offset: a.src.base + dataOff}
	return e, nil
}

// hardlink resolves a link target inside the same prefix. The entry keeps
// a copy of the target's content location, so a writer can still produce
// the file if the target is later replaced.
func (a *applier) hardlink(e *Entry, hdr *tar.Header) error {
	name, ok := Clean(hdr.Linkname)
	if !ok || name == "" {
		return fmt.Errorf("hard link to %q: %w", hdr.Linkname, errEscape)
	}
	target := path.Join(a.prefix, name)
	te := a.t.entries[target]
	if te != nil && te.Kind == KindHardlink && a.t.entries[te.Link] != nil {
		target, te = te.Link, a.t.entries[te.Link]
	}
	switch {
	case te == nil:
		return fmt.Errorf("hard link to %q: %w", hdr.Linkname, errNoEntry)
	case te.Kind == KindDir:
		return fmt.Errorf("hard link to directory %q", hdr.Linkname)
	case target == path.Join(a.prefix, mustClean(hdr.Name)):
		return fmt.Errorf("hard link to itself")
	case te.Kind == KindSymlink:
		// A second name for a symbolic link reads the same as a copy of
		// it, and every output format can hold a copy.
		e.Kind, e.Link = KindSymlink, te.Link
		return nil
	}
	e.Kind = KindHardlink
	e.Link = target
	e.Size = te.Size
	e.Content = te.Content
	e.Major, e.Minor = te.Major, te.Minor
	return nil
}

func mustClean(p string) string {
	c, _ := Clean(p)
	return c
}

func device(e *Entry, hdr *tar.Header) error {
	if hdr.Devmajor < 0 || hdr.Devminor < 0 || hdr.Devmajor > math.MaxUint32 || hdr.Devminor > math.MaxUint32 {
		return fmt.Errorf("device number %d:%d out of range", hdr.Devmajor, hdr.Devminor)
	}
	e.Kind = KindCharDev
	if hdr.Typeflag == tar.TypeBlock {
		e.Kind = KindBlockDev
	}
	e.Major, e.Minor = uint32(hdr.Devmajor), uint32(hdr.Devminor)
	return nil
}

// xattrs collects SCHILY.xattr.* PAX records.
func xattrs(hdr *tar.Header) map[string]string {
	var x map[string]string
	for k, v := range hdr.PAXRecords {
		if name, ok := strings.CutPrefix(k, xattrPAXPrefix); ok && name != "" {
			if x == nil {
				x = map[string]string{}
			}
			x[name] = v
		}
	}
	return x
}

// setRoot applies the archive's own root entry ("./") to the prefix
// directory: only a directory may stand there, and only its metadata
// changes.
func (a *applier) setRoot(e *Entry) error {
	if e.Kind != KindDir {
		return fmt.Errorf("archive root is not a directory")
	}
	old := a.t.entries[a.prefix]
	if old == nil {
		a.put(e)
		return nil
	}
	c := *old
	c.Mode, c.UID, c.GID, c.ModTime, c.Xattrs = e.Mode, e.UID, e.GID, e.ModTime, e.Xattrs
	a.t.entries[a.prefix] = &c
	return nil
}

// put adds e and records it (and any parents the tree creates) as added by
// this archive.
func (a *applier) put(e *Entry) {
	for d := path.Dir(e.Path); d != "." && d != "" && !a.added[d]; d = path.Dir(d) {
		if old := a.t.entries[d]; old == nil || old.Kind != KindDir {
			a.added[d] = true
		}
	}
	if old := a.t.entries[e.Path]; old != nil && old.Kind == KindDir && e.Kind == KindDir {
		// A directory over a directory changes metadata only; what lies
		// below stays (OCI image spec, "Changesets").
		a.t.entries[e.Path] = e
	} else {
		a.t.Put(e)
	}
	a.added[e.Path] = true
}

// whiteout removes p and everything below it that lower layers put there,
// in time proportional to what lies below p.
func (a *applier) whiteout(p string) {
	a.opaque(p)
	if !a.added[p] && len(a.t.kids[p]) == 0 {
		a.t.del(p)
	}
}

// opaque removes everything lower layers put below dir; dir itself stays.
func (a *applier) opaque(dir string) {
	a.t.prune(dir, func(p string) bool { return a.added[p] })
}

// graft copies every entry of src except its root into dst under prefix,
// in walk order, so directories precede their contents. Hard link targets
// move with the entries.
func graft(dst *Tree, prefix string, src *Tree) {
	_ = src.Walk(func(e *Entry) error {
		if e.Path == "" {
			return nil
		}
		c := *e
		c.Path = path.Join(prefix, e.Path)
		c.Xattrs = maps.Clone(e.Xattrs)
		if c.Kind == KindHardlink {
			c.Link = path.Join(prefix, e.Link)
		}
		if old := dst.entries[c.Path]; old != nil && old.Kind == KindDir && c.Kind == KindDir {
			dst.entries[c.Path] = &c
			return nil
		}
		dst.Put(&c)
		return nil
	})
}
