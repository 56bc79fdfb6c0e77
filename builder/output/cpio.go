package output

import (
	"context"
	"fmt"
	"io"
	"math"

	"github.com/u-root/u-root/pkg/cpio"

	"github.com/bulkhead-dev/bulkhead/builder/rootfs"
)

// writeCPIO writes t as a newc archive ending with the trailer. Hard links
// of a regular file share an ino and carry the link count; the data goes
// with the last of them, as GNU cpio writes it (the kernel and GNU cpio both
// accept it).
func writeCPIO(ctx context.Context, w io.Writer, t *rootfs.Tree) error {
	ms, err := plan(ctx, t)
	if err != nil {
		return err
	}
	b := newBlobs()
	defer b.Close()
	rw := cpio.Newc.Writer(w)
	for _, m := range ms {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := writeRecord(ctx, rw, b, m); err != nil {
			return fmt.Errorf("writing %s: %w", displayPath(m.path), err)
		}
	}
	if err := cpio.WriteTrailer(rw); err != nil {
		return fmt.Errorf("writing cpio trailer: %w", err)
	}
	return nil
}

func writeRecord(ctx context.Context, rw cpio.RecordWriter, b *blobs, m member) error {
	rec, err := record(ctx, b, m)
	if err != nil {
		return err
	}
	return rw.WriteRecord(rec)
}

// record describes m as a cpio record; a regular file's data is read lazily.
func record(ctx context.Context, b *blobs, m member) (cpio.Record, error) {
	info, err := recordInfo(m)
	if err != nil {
		return cpio.Record{}, err
	}
	rec := cpio.Record{Info: info}
	switch m.kind {
	case rootfs.KindSymlink:
		rec = cpio.StaticRecord([]byte(m.e.Link), info)
	case rootfs.KindFile:
		if !m.last {
			rec.FileSize = 0
			break
		}
		c, err := newContent(ctx, b, m.e)
		if err != nil {
			return cpio.Record{}, err
		}
		rec.ReaderAt = c
	}
	return rec, nil
}

func recordInfo(m member) (cpio.Info, error) {
	e := m.e
	typ, err := modeType(m.kind)
	if err != nil {
		return cpio.Info{}, err
	}
	if err := checkNewc(e); err != nil {
		return cpio.Info{}, err
	}
	info := cpio.Info{
		Ino:   m.ino,
		Mode:  typ | uint64(e.Mode&0o7777),
		UID:   uint64(e.UID),
		GID:   uint64(e.GID),
		NLink: uint64(m.nlink),
		MTime: uint64(e.ModTime),
		Name:  displayPath(m.path),
	}
	switch m.kind {
	case rootfs.KindFile:
		if e.Size < 0 || e.Size > math.MaxUint32 {
			return cpio.Info{}, fmt.Errorf("size %d out of range for newc", e.Size)
		}
		info.FileSize = uint64(e.Size)
	case rootfs.KindCharDev, rootfs.KindBlockDev:
		info.Rmajor, info.Rminor = uint64(e.Major), uint64(e.Minor)
	}
	return info, nil
}

// checkNewc reports fields that newc's 32-bit header cannot hold.
func checkNewc(e *rootfs.Entry) error {
	switch {
	case e.UID < 0 || e.GID < 0 || int64(e.UID) > math.MaxUint32 || int64(e.GID) > math.MaxUint32:
		return fmt.Errorf("owner %d:%d out of range for newc", e.UID, e.GID)
	case e.ModTime < 0 || e.ModTime > math.MaxUint32:
		return fmt.Errorf("modification time %d out of range for newc", e.ModTime)
	}
	return nil
}

func modeType(k rootfs.Kind) (uint64, error) {
	switch k {
	case rootfs.KindFile:
		return cpio.S_IFREG, nil
	case rootfs.KindDir:
		return cpio.S_IFDIR, nil
	case rootfs.KindSymlink:
		return cpio.S_IFLNK, nil
	case rootfs.KindCharDev:
		return cpio.S_IFCHR, nil
	case rootfs.KindBlockDev:
		return cpio.S_IFBLK, nil
	case rootfs.KindFIFO:
		return cpio.S_IFIFO, nil
	case rootfs.KindSocket:
		return cpio.S_IFSOCK, nil
	}
	return 0, fmt.Errorf("unknown entry kind %d", k)
}

// displayPath is p as an archive member name: the root is ".".
func displayPath(p string) string {
	if p == "" {
		return "."
	}
	return p
}
