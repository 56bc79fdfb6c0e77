package qemu

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/bulkhead-dev/bulkhead/internal/regfile"
)

// sizeDisk returns the disk image qemu attaches and whether it attaches it
// as a snapshot: disk itself when it is at least size bytes (or size is
// 0); disk grown to size when the guest may write to it; a copy of disk
// in dir grown to size when snapshot asks to leave disk as it was (the
// copy is temporary, so it needs no overlay).
func sizeDisk(disk string, size int64, snapshot bool, dir string) (string, bool, error) {
	if disk == "" || size <= 0 {
		return disk, snapshot, nil
	}
	st, err := os.Stat(disk)
	if err != nil {
		return "", false, err
	}
	if !st.Mode().IsRegular() || st.Size() >= size {
		return disk, snapshot, nil
	}
	if !snapshot {
		if err := os.Truncate(disk, size); err != nil {
			return "", false, fmt.Errorf("growing %s to %d bytes: %w", disk, size, err)
		}
		return disk, false, nil
	}
	grown := filepath.Join(dir, "disk.img")
	if err := sparseCopy(disk, grown, size); err != nil {
		return "", false, fmt.Errorf("copying %s to grow it: %w", disk, err)
	}
	return grown, false, nil
}

// sparseCopy copies the regions of src that hold data to a new file dst of
// size bytes (at least src's); the holes stay holes.
func sparseCopy(src, dst string, size int64) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if err := copyData(out, in, st.Size()); err != nil {
		out.Close()
		return err
	}
	if err := out.Truncate(max(size, st.Size())); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// copyData copies each data region of in's first end bytes to the same
// offset of out.
func copyData(out, in *os.File, end int64) error {
	return regfile.DataRegions(in, end, func(data, hole int64) error {
		_, err := io.Copy(io.NewOffsetWriter(out, data), io.NewSectionReader(in, data, hole-data))
		return err
	})
}
