package apply

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"

	"github.com/bulkhead-dev/bulkhead/internal/update"
	"github.com/bulkhead-dev/bulkhead/internal/verity"
)

// chunk is how much of the root is written at a time.
const chunk = 4 << 20

// finishSlot syncs the written slot and reads it back against the verity
// root hash.
func finishSlot(ctx context.Context, t Target, m *update.Manifest) error {
	if err := t.Slot.Sync(); err != nil {
		return fmt.Errorf("syncing slot %s: %w", t.SlotGUID, err)
	}
	params, err := m.Params()
	if err != nil {
		return err
	}
	if err := verity.Verify(ctx, t.Slot, params); err != nil {
		return fmt.Errorf("reading back slot %s: %w", t.SlotGUID, err)
	}
	return nil
}

// copyAt copies r to the start of w until r returns io.EOF (the payload
// reader's sign that size and digests matched).
func copyAt(ctx context.Context, w io.WriterAt, r io.Reader) error {
	buf := make([]byte, chunk)
	var off int64
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			if _, werr := w.WriteAt(buf[:n], off); werr != nil {
				return werr
			}
			off += int64(n)
		}
		switch {
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
			return nil
		case err != nil:
			return err
		}
	}
}

// FileSlot is a slot backed by an open file or block device. Sync also
// drops the device's cached pages, so the read-back reads the disk.
type FileSlot struct{ *os.File }

// OpenSlot opens a slot (a block device, or a file) for writing and
// returns it with its size.
func OpenSlot(path string) (*FileSlot, int64, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, 0, fmt.Errorf("opening slot: %w", err)
	}
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("opening slot: %w", err)
	}
	return &FileSlot{f}, size, nil
}

// Sync flushes the slot and drops its cached pages.
func (s *FileSlot) Sync() error {
	if err := s.File.Sync(); err != nil {
		return err
	}
	_ = unix.Fadvise(int(s.Fd()), 0, 0, unix.FADV_DONTNEED)
	return nil
}
