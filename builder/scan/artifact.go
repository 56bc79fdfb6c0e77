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

// newc header: magic and 13 eight-digit hex fields.
const newcHeader = 110

type newcRecord struct {
	ino, mode, uid, gid, nlink, mtime, size, major, minor uint64
	name                                                  string
	data                                                  []byte
}

// readNewc applies one newc archive at the start of data, up to its
// trailer, and returns its length. Hard links share an inode; the data
// comes with one of them (the last, as GNU cpio writes it).
func readNewc(t *rootfs.Tree, data []byte) (int, error) {
	off := 0
	var links []newcRecord
	byIno := map[uint64]string{}
	for {
		rec, n, err := parseNewc(data[off:])
		if err != nil {
			return 0, fmt.Errorf("cpio at %d: %w", off, err)
		}
		off += n
		if rec.name == "TRAILER!!!" {
			break
		}
		if int64(t.Len()+len(links)) >= config.DefaultLimits.Entries {
			return 0, fmt.Errorf("cpio at %d: %w: more than %d entries", off, ErrTooLarge, config.DefaultLimits.Entries)
		}
		if rec.mode&0o170000 == 0o100000 && rec.nlink > 1 {
			links = append(links, rec)
			if rec.size > 0 {
				byIno[rec.ino] = rec.name
			}
			continue
		}
		putNewc(t, rec, "")
	}
	for _, rec := range links {
		target := byIno[rec.ino]
		if rec.name == target || target == "" {
			putNewc(t, rec, "")
			continue
		}
		putNewc(t, rec, target)
	}
	for _, rec := range links {
		if e := t.Get(mustCleanPath(rec.name)); e != nil && e.Kind == rootfs.KindHardlink {
			if te := t.Get(e.Link); te != nil {
				e.Size, e.Content = te.Size, te.Content
			}
		}
	}
	return off, nil
}

func parseNewc(b []byte) (newcRecord, int, error) {
	var r newcRecord
	if len(b) < newcHeader || !bytes.HasPrefix(b, magicNewc) {
		return r, 0, errors.New("bad header")
	}
	var f [13]uint64
	for i := range f {
		v, err := strconv.ParseUint(string(b[6+8*i:14+8*i]), 16, 64)
		if err != nil {
			return r, 0, errors.New("bad header field")
		}
		f[i] = v
	}
	r.ino, r.mode, r.uid, r.gid, r.nlink, r.mtime, r.size = f[0], f[1], f[2], f[3], f[4], f[5], f[6]
	r.major, r.minor = f[9], f[10]
	nameSize := int(f[11])
	end := newcHeader + nameSize
	if nameSize < 1 || end > len(b) {
		return r, 0, errors.New("bad name")
	}
	r.name = string(b[newcHeader : end-1])
	start := align4(end)
	dend := start + int(r.size)
	if r.size > uint64(len(b)) || dend > len(b) {
		return r, 0, errors.New("data past the end")
	}
	r.data = b[start:dend]
	// The padding after the last record may be cut off.
	return r, min(align4(dend), len(b)), nil
}

func align4(n int) int { return (n + 3) &^ 3 }

func mustCleanPath(p string) string {
	c, _ := rootfs.Clean(p)
	return c
}

func putNewc(t *rootfs.Tree, r newcRecord, linkTo string) {
	p, ok := rootfs.Clean(r.name)
	if !ok || p == "" {
		return
	}
	e := &rootfs.Entry{
		Path: p, Mode: uint32(r.mode) & 0o7777, UID: int(r.uid), GID: int(r.gid),
		ModTime: int64(r.mtime), Major: uint32(r.major), Minor: uint32(r.minor), Origin: "artifact",
	}
	switch r.mode & 0o170000 {
	case 0o100000:
		e.Kind, e.Size, e.Content = rootfs.KindFile, int64(len(r.data)), rootfs.Content{Data: r.data}
		if linkTo != "" {
			e.Kind, e.Link = rootfs.KindHardlink, mustCleanPath(linkTo)
		}
	case 0o040000:
		e.Kind = rootfs.KindDir
	case 0o120000:
		e.Kind, e.Link = rootfs.KindSymlink, string(r.data)
	case 0o020000:
		e.Kind = rootfs.KindCharDev
	case 0o060000:
		e.Kind = rootfs.KindBlockDev
	case 0o010000:
		e.Kind = rootfs.KindFIFO
	case 0o140000:
		e.Kind = rootfs.KindSocket
	default:
		return
	}
	if old := t.Get(p); old != nil && old.Kind == rootfs.KindDir && e.Kind == rootfs.KindDir {
		return
	}
	t.Put(e)
}
