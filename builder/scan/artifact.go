package scan

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/u-root/u-root/pkg/cpio"

	"github.com/bulkhead-dev/bulkhead/builder/config"
	"github.com/bulkhead-dev/bulkhead/builder/disk"
	"github.com/bulkhead-dev/bulkhead/builder/resolve"
	"github.com/bulkhead-dev/bulkhead/builder/rootfs"
	"github.com/bulkhead-dev/bulkhead/builder/rootimg"
	"github.com/bulkhead-dev/bulkhead/internal/bootparam"
	"github.com/bulkhead-dev/bulkhead/internal/regfile"
)

// ErrUnsupported is returned for artifacts ReadArtifact cannot read yet.
var ErrUnsupported = errors.New("unsupported artifact")

var (
	magicGzip = []byte{0x1f, 0x8b}
	magicZstd = []byte{0x28, 0xb5, 0x2f, 0xfd}
	magicNewc = []byte("070701")
)

// Artifact is what a built artifact holds: the root the host runs and,
// where the artifact carries them, the kernel and command line that boot
// it.
type Artifact struct {
	Tree    *rootfs.Tree
	Kernel  *Kernel // nil when unknown
	Cmdline string
}

// ReadArtifact reads the root tree of a built artifact (see
// ReadBootArtifact).
func ReadArtifact(p string, opts ...ReadOption) (*rootfs.Tree, error) {
	a, err := ReadBootArtifact(p, opts...)
	if err != nil {
		return nil, err
	}
	return a.Tree, nil
}

// ReadBootArtifact reads a built artifact: a tar (its file contents stay
// in the file, addressed by offset); an initrd, newc cpio archives,
// concatenated, each uncompressed, gzip or zstd (a microcode archive
// before the root is read too; a stage-0 initrd stands for the root image
// it carries), with NAME-kernel and NAME-cmdline beside NAME-initrd.img;
// a raw-efi disk (the root image in root-a); or an iso-efi image (the root
// image in its boot initrd). For disks and ISOs the kernel and command
// line are those of the first boot entry, read once with its initrd.
// An initrd is read into memory, within the size and ratio limits (see
// WithMaxDecompressed and WithMaxRatio); the on-disk structures of disks
// and ISOs are bounds- and loop-checked as they are read.
func ReadBootArtifact(p string, opts ...ReadOption) (*Artifact, error) {
	o, err := newReadOptions(opts)
	if err != nil {
		return nil, err
	}
	a, err := readBootArtifact(p, o)
	if err != nil {
		return nil, fmt.Errorf("reading artifact %s: %w", p, err)
	}
	return a, nil
}

func readBootArtifact(p string, o *readOptions) (*Artifact, error) {
	f, _, err := regfile.Open(p)
	if err != nil {
		return nil, err
	}
	head := make([]byte, 1024)
	n, _ := io.ReadFull(f, head)
	f.Close()
	head = head[:n]
	switch {
	case n >= 262 && string(head[257:262]) == "ustar":
		t := rootfs.New()
		if err := rootfs.ApplyLayer(t, "", resolve.Layer{Path: p}); err != nil {
			return nil, err
		}
		return &Artifact{Tree: t}, nil
	case bytes.HasPrefix(head, magicNewc), bytes.HasPrefix(head, magicGzip), bytes.HasPrefix(head, magicZstd):
		data, err := regfile.ReadFile(p, o.maxSize)
		if err != nil {
			return nil, err
		}
		t, err := readBootInitrd(data, o)
		if err != nil {
			return nil, err
		}
		return besideInitrd(&Artifact{Tree: t}, p)
	case n >= 512 && string(head[510:512]) == "\x55\xaa":
		t, err := readRawRoot(p)
		if err != nil {
			return nil, err
		}
		be, err := disk.ReadBootEntry(p)
		if err != nil {
			return nil, err
		}
		return withEntry(&Artifact{Tree: t}, be)
	case isISO(p):
		be, err := disk.ReadBootEntry(p)
		if err != nil {
			return nil, err
		}
		t, err := readBootInitrd(be.Initrd, o)
		if err != nil {
			return nil, err
		}
		return withEntry(&Artifact{Tree: t}, be)
	}
	return nil, fmt.Errorf("not a tar, an initrd, a raw-efi disk or an iso-efi image: %w", ErrUnsupported)
}

// besideInitrd adds NAME-kernel and NAME-cmdline when they are beside the
// initrd NAME-initrd.img, as kernel+initrd builds write them.
func besideInitrd(a *Artifact, p string) (*Artifact, error) {
	prefix, ok := strings.CutSuffix(p, "-initrd.img")
	if !ok {
		return a, nil
	}
	if b, err := os.ReadFile(prefix + "-cmdline"); err == nil {
		a.Cmdline = strings.TrimSpace(string(b))
	}
	st, err := os.Stat(prefix + "-kernel")
	if err != nil {
		return a, nil
	}
	return withKernel(a, &rootfs.Entry{Path: "kernel", Kind: rootfs.KindFile, Size: st.Size(), Content: rootfs.Content{Blob: prefix + "-kernel"}})
}

// withEntry adds a boot entry's kernel and command line.
func withEntry(a *Artifact, be *disk.BootEntry) (*Artifact, error) {
	a.Cmdline = be.Options
	return withKernel(a, &rootfs.Entry{Path: "kernel", Kind: rootfs.KindFile, Size: int64(len(be.Kernel)), Content: rootfs.Content{Data: be.Kernel}})
}

func withKernel(a *Artifact, bin *rootfs.Entry) (*Artifact, error) {
	k, err := KernelInfo(bin, nil)
	if err != nil {
		return nil, fmt.Errorf("the kernel: %w", err)
	}
	a.Kernel = k
	return a, nil
}

// readBootInitrd reads an initrd; one that carries a root image (the
// stage-0 initrd of a verified root) stands for the root image's tree,
// which is what the host runs.
func readBootInitrd(data []byte, o *readOptions) (*rootfs.Tree, error) {
	t, err := readInitrd(data, o)
	if err != nil {
		return nil, err
	}
	img := t.Get(RootImagePath)
	if img == nil || img.Kind != rootfs.KindFile {
		return t, nil
	}
	root, err := rootimg.Read(rootimg.Source{Data: img.Content.Data}, "/"+RootImagePath)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", RootImagePath, err)
	}
	return root, nil
}

// RootImagePath is where a stage-0 initrd carries the root image.
const RootImagePath = bootparam.RootImageFile

// readRawRoot reads the root image in root-a of a raw-efi disk.
func readRawRoot(p string) (*rootfs.Tree, error) {
	l, err := disk.ReadLayout(p)
	if err != nil {
		return nil, err
	}
	part, ok := l.Partition("root-a")
	if !ok {
		return nil, fmt.Errorf("no root-a partition: %w", ErrUnsupported)
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	t, err := rootimg.Read(rootimg.Source{R: io.NewSectionReader(f, part.Offset, part.Size), Blob: p, Base: part.Offset}, "root-a")
	if err != nil {
		return nil, fmt.Errorf("root-a: %w", err)
	}
	return t, nil
}

// isISO reports whether p holds an ISO 9660 file system.
func isISO(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	b := make([]byte, 5)
	_, err = f.ReadAt(b, 32769) // the primary volume descriptor's id, sector 16
	return err == nil && string(b) == "CD001"
}

// readInitrd applies every archive of an initrd to a new tree.
func readInitrd(data []byte, o *readOptions) (*rootfs.Tree, error) {
	t := rootfs.New()
	for {
		data = bytes.TrimLeft(data, "\x00")
		switch {
		case len(data) == 0:
			return t, nil
		case bytes.HasPrefix(data, magicNewc):
			n, err := readNewc(t, data)
			if err != nil {
				return nil, err
			}
			data = data[n:]
		case bytes.HasPrefix(data, magicGzip), bytes.HasPrefix(data, magicZstd):
			out, err := decompress(data, o)
			if err != nil {
				return nil, err
			}
			data = out // a compressed archive runs to the end
		default:
			return nil, fmt.Errorf("unknown data in initrd")
		}
	}
}

// decompress reads a gzip or zstd stream within the size and ratio limits,
// never holding more than the limit.
func decompress(data []byte, o *readOptions) ([]byte, error) {
	limit, over := o.allowed(len(data))
	var r io.Reader
	if bytes.HasPrefix(data, magicGzip) {
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		r = zr
	} else {
		zr, err := zstd.NewReader(bytes.NewReader(data), zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderMaxMemory(uint64(max(limit, 256<<20))))
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		defer zr.Close()
		r = zr
	}
	out, err := readAllLimited(r, limit, over)
	if err != nil {
		return nil, fmt.Errorf("decompressing initrd: %w", err)
	}
	return out, nil
}

// maxCpioName bounds a record's name: u-root's reader allocates the name
// length the header claims before reading it.
const maxCpioName = 4096

// readNewc applies one newc archive at the start of data, up to its
// trailer, and returns its length. Records are read with u-root's
// pkg/cpio (the reader of the format our initrds are written with); a
// record the tree cannot hold (a path outside the root, an unknown file
// type) is an error, never skipped. Hard links share an inode; the data
// comes with one of them (the last, as GNU cpio writes it).
func readNewc(t *rootfs.Tree, data []byte) (int, error) {
	rr := cpio.Newc.Reader(bytes.NewReader(data))
	if e, ok := rr.(cpio.EOFReader); ok {
		rr = e.RecordReader // see the trailer, to know where the archive ends
	}
	pos := int64(0)
	var links []cpio.Record
	byIno := map[uint64]string{}
	for {
		rec, err := readCpioRecord(rr, data, pos)
		if err != nil {
			return 0, fmt.Errorf("cpio at %d: %w", pos, err)
		}
		pos = min(align4(rec.FilePos+int64(rec.FileSize)), int64(len(data))) // the last padding may be cut off
		if rec.Name == cpio.Trailer {
			return int(pos), finishLinks(t, data, links, byIno)
		}
		if int64(t.Len()+len(links)) >= config.DefaultLimits.Entries {
			return 0, fmt.Errorf("cpio at %d: %w: more than %d entries", pos, ErrTooLarge, config.DefaultLimits.Entries)
		}
		if rec.Mode&cpio.S_IFMT == cpio.S_IFREG && rec.NLink > 1 {
			links = append(links, rec)
			if rec.FileSize > 0 {
				byIno[rec.Ino] = rec.Name
			}
			continue
		}
		if err := putNewc(t, data, rec, ""); err != nil {
			return 0, err
		}
	}
}

// readCpioRecord reads the record at pos after checking what the reader
// does not: the name's length, and that the data lies inside the archive.
func readCpioRecord(rr cpio.RecordReader, data []byte, pos int64) (cpio.Record, error) {
	if h := data[pos:]; len(h) >= 102 {
		if n, err := strconv.ParseUint(string(h[94:102]), 16, 32); err == nil && n > maxCpioName {
			return cpio.Record{}, fmt.Errorf("name of %d bytes, more than %d", n, maxCpioName)
		}
	}
	rec, err := rr.ReadRecord()
	if errors.Is(err, io.EOF) {
		return rec, errors.New("archive ends without a trailer")
	}
	if err != nil {
		return rec, err
	}
	if rec.FilePos+int64(rec.FileSize) > int64(len(data)) {
		return rec, fmt.Errorf("%s: data past the end", rec.Name)
	}
	return rec, nil
}

// finishLinks puts the hard-linked files once every record is read.
func finishLinks(t *rootfs.Tree, data []byte, links []cpio.Record, byIno map[uint64]string) error {
	for _, rec := range links {
		target := byIno[rec.Ino]
		if rec.Name == target {
			target = ""
		}
		if err := putNewc(t, data, rec, target); err != nil {
			return err
		}
	}
	for _, rec := range links {
		if e := t.Get(mustCleanPath(rec.Name)); e != nil && e.Kind == rootfs.KindHardlink {
			if te := t.Get(e.Link); te != nil {
				e.Size, e.Content = te.Size, te.Content
			}
		}
	}
	return nil
}

func align4(n int64) int64 { return (n + 3) &^ 3 }

func mustCleanPath(p string) string {
	c, _ := rootfs.Clean(p)
	return c
}

// putNewc adds one record to t; data is the archive its contents lie in.
func putNewc(t *rootfs.Tree, data []byte, r cpio.Record, linkTo string) error {
	p, ok := rootfs.Clean(r.Name)
	if !ok {
		return fmt.Errorf("cpio record %q: path leaves the root", r.Name)
	}
	if p == "" {
		return nil // the root directory itself
	}
	e := &rootfs.Entry{
		Path: p, Mode: uint32(r.Mode) & 0o7777, UID: int(r.UID), GID: int(r.GID),
		ModTime: int64(r.MTime), Major: uint32(r.Rmajor), Minor: uint32(r.Rminor), Origin: "artifact",
	}
	content := data[r.FilePos : r.FilePos+int64(r.FileSize)]
	switch r.Mode & cpio.S_IFMT {
	case cpio.S_IFREG:
		e.Kind, e.Size, e.Content = rootfs.KindFile, int64(len(content)), rootfs.Content{Data: content}
		if linkTo != "" {
			e.Kind, e.Link = rootfs.KindHardlink, mustCleanPath(linkTo)
		}
	case cpio.S_IFDIR:
		e.Kind = rootfs.KindDir
	case cpio.S_IFLNK:
		e.Kind, e.Link = rootfs.KindSymlink, string(content)
	case cpio.S_IFCHR:
		e.Kind = rootfs.KindCharDev
	case cpio.S_IFBLK:
		e.Kind = rootfs.KindBlockDev
	case cpio.S_IFIFO:
		e.Kind = rootfs.KindFIFO
	case cpio.S_IFSOCK:
		e.Kind = rootfs.KindSocket
	default:
		return fmt.Errorf("cpio record %q: unknown file type %#o", r.Name, r.Mode&cpio.S_IFMT)
	}
	if old := t.Get(p); old != nil && old.Kind == rootfs.KindDir && e.Kind == rootfs.KindDir {
		return nil
	}
	t.Put(e)
	return nil
}
