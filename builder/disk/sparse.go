package disk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
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
