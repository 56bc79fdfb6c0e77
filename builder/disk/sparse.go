package disk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/bulkhead-dev/bulkhead/internal/regfile"
)

const (
	sparseBlock = 4096
	copyChunk   = 4 * MiB
)

// writeSparse copies src into w at off, writing only the blocks that are
// not all zero: the file was truncated to size, so the rest reads as zeros
// and stays unallocated. src must fit in limit bytes.
func writeSparse(ctx context.Context, w *hashedFile, off, limit int64, src Source) error {
	if src.Path == "" {
		if int64(len(src.Data)) > limit {
			return fmt.Errorf("%d bytes do not fit %d", len(src.Data), limit)
		}
		return w.writeAt(off, src.Data)
	}
	r, done, err := src.open()
	if err != nil {
		return err
	}
	defer done()
	// Two buffers: w hashes one while the other is read and written.
	bufs := [2][]byte{make([]byte, copyChunk), make([]byte, copyChunk)}
	for i, pos := 0, int64(0); ; i++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		buf := bufs[i%2]
		n, err := io.ReadFull(r, buf)
		if pos+int64(n) > limit {
			return fmt.Errorf("%s does not fit %d bytes", src, limit)
		}
		if werr := w.writeAt(off+pos, buf[:n]); werr != nil {
			return werr
		}
		pos += int64(n)
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading %s: %w", src, err)
		}
	}
}

// writeNonZero writes the runs of b's non-zero blocks at off.
func writeNonZero(f *os.File, off int64, b []byte) error {
	runStart := -1
	for i := 0; i < len(b); i += sparseBlock {
		end := min(i+sparseBlock, len(b))
		if zero(b[i:end]) {
			if runStart >= 0 {
				if _, err := f.WriteAt(b[runStart:i], off+int64(runStart)); err != nil {
					return err
				}
				runStart = -1
			}
			continue
		}
		if runStart < 0 {
			runStart = i
		}
	}
	if runStart >= 0 {
		if _, err := f.WriteAt(b[runStart:], off+int64(runStart)); err != nil {
			return err
		}
	}
	return nil
}

var zeroBlock [sparseBlock]byte

func zero(b []byte) bool { return bytes.Equal(b, zeroBlock[:len(b)]) }

// scratchFile is a sparse temporary file of size bytes that a disk image
// is assembled from.
type scratchFile struct {
	f    *os.File
	size int64
}

// remove closes and deletes the file.
func (s *scratchFile) remove() {
	s.f.Close()
	os.Remove(s.f.Name())
}

// scratchChunk is the most eachData passes to one call.
const scratchChunk = 1 * MiB

// eachData calls fn with the file's data, in order, skipping its holes
// (SEEK_DATA, SEEK_HOLE; a file system without them reports the whole
// file as data). It alternates two buffers, as hashedFile needs.
func (s *scratchFile) eachData(fn func(off int64, b []byte) error) error {
	bufs := [2][]byte{make([]byte, scratchChunk), make([]byte, scratchChunk)}
	i := 0
	return regfile.DataRegions(s.f, s.size, func(data, hole int64) error {
		for p := data; p < hole; i++ {
			b := bufs[i%2][:min(hole-p, scratchChunk)]
			if _, err := s.f.ReadAt(b, p); err != nil {
				return err
			}
			if err := fn(p, b); err != nil {
				return err
			}
			p += int64(len(b))
		}
		return nil
	})
}
