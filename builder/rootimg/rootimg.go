// Package rootimg writes a root tree as a verified root image: an
// uncompressed EROFS file system at offset 0, padded to a 4 KiB block, then
// a dm-verity superblock and hash tree (veritysetup's format) right after it.
// The image is reproducible: entries go in sorted order, every timestamp is
// the tree's (the build time is the given epoch), and the verity salt
// derives from the file system's bytes.
package rootimg

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/erofs/go-erofs"

	"github.com/bulkhead-dev/bulkhead/builder/rootfs"
	"github.com/bulkhead-dev/bulkhead/internal/verity"
)

// MountPoints are the directories the init's stage 1 mounts on (see
// internal/host/stage0.MountPoints). The root is mounted read-only, so
// Write adds any that the tree lacks.
var MountPoints = []string{"proc", "sys", "dev", "run", "tmp", "var"}

// File is where the image goes: written, then read back to hash it. An
// *os.File fits; if the value has Truncate, the file is cut to the image's
// size.
type File interface {
	io.ReaderAt
	io.WriterAt
}

// Image describes a written root image.
type Image struct {
	// Size is the whole image in bytes: file system plus verity tree.
	Size int64
	// FSSize is the file system's size, a multiple of verity.BlockSize;
	// the verity superblock starts there.
	FSSize int64
	// Verity is what the kernel needs to check the file system.
	Verity verity.Params
	// Added lists the mount points Write added to the root (see
	// MountPoints), as absolute paths.
	Added []string
}

type options struct {
	epoch int64
}

// Option configures Write.
type Option func(*options) error

// WithEpoch sets the file system's build time in Unix seconds (normally
// SOURCE_DATE_EPOCH); it also dates the mount points Write adds. The
// default is 0.
func WithEpoch(sec int64) Option {
	return func(o *options) error {
		if sec < 0 {
			return fmt.Errorf("negative epoch %d", sec)
		}
		o.epoch = sec
		return nil
	}
}

// Write writes t to f as an EROFS file system followed by its dm-verity
// tree. f is written from offset 0.
func Write(ctx context.Context, t *rootfs.Tree, f File, opts ...Option) (*Image, error) {
	var o options
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, fmt.Errorf("writing root image: %w", err)
		}
	}
	src, err := newTreeFS(ctx, t, o.epoch)
	if err != nil {
		return nil, fmt.Errorf("writing root image: %w", err)
	}
	fsSize, err := writeEROFS(src, f, o.epoch)
	if err != nil {
		return nil, fmt.Errorf("writing root image: %w", err)
	}
	if err := linkHard(f, src.hardlinks); err != nil {
		return nil, fmt.Errorf("writing root image: %w", err)
	}
	salt, err := verity.ContentSalt(ctx, f, fsSize)
	if err != nil {
		return nil, fmt.Errorf("writing root image: %w", err)
	}
	p, err := verity.Format(ctx, f, fsSize, f, fsSize, salt)
	if err != nil {
		return nil, fmt.Errorf("writing root image: %w", err)
	}
	img := &Image{Size: fsSize + verity.HashSize(fsSize), FSSize: fsSize, Verity: p, Added: src.added}
	if tr, ok := f.(interface{ Truncate(int64) error }); ok {
		if err := tr.Truncate(img.Size); err != nil {
			return nil, fmt.Errorf("writing root image: %w", err)
		}
	}
	return img, nil
}

// writeEROFS writes the file system and pads it to a whole verity block,
// returning its size.
func writeEROFS(src *treeFS, f io.WriterAt, epoch int64) (int64, error) {
	out := &seekWriter{w: f}
	w := erofs.Create(out, erofs.WithBuildTime(uint64(epoch), 0))
	if err := w.CopyFrom(src); err != nil {
		return 0, fmt.Errorf("adding entries: %w", err)
	}
	for _, n := range src.withXattrs {
		keys := make([]string, 0, len(n.xattrs))
		for k := range n.xattrs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if err := w.Setxattr("/"+n.path, k, n.xattrs[k]); err != nil {
				return 0, fmt.Errorf("setting xattr %s on /%s: %w", k, n.path, err)
			}
		}
	}
	if err := w.Close(); err != nil {
		return 0, fmt.Errorf("writing erofs: %w", err)
	}
	size := out.end
	if pad := (verity.BlockSize - size%verity.BlockSize) % verity.BlockSize; pad > 0 {
		if _, err := f.WriteAt(make([]byte, pad), size); err != nil {
			return 0, fmt.Errorf("padding erofs: %w", err)
		}
		size += pad
	}
	return size, nil
}

// seekWriter turns an io.WriterAt into the io.WriteSeeker the EROFS writer
// needs, remembering how far it wrote.
type seekWriter struct {
	w        io.WriterAt
	off, end int64
}

func (s *seekWriter) Write(p []byte) (int, error) {
	n, err := s.w.WriteAt(p, s.off)
	s.off += int64(n)
	s.end = max(s.end, s.off)
	return n, err
}

func (s *seekWriter) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += s.off
	case io.SeekEnd:
		offset += s.end
	default:
		return 0, errors.New("seek: bad whence")
	}
	if offset < 0 {
		return 0, errors.New("seek: negative offset")
	}
	s.off = offset
	return offset, nil
}
