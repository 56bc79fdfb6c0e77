// Package regfile reads files named by untrusted input (spec files, the
// sources of a spec's files entries): regular files only, never blocking on
// a FIFO or a device, and never more bytes than a limit allows.
package regfile

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// ErrNotRegular is returned (as a *NotRegularError) for a FIFO, a device,
// a socket or a directory.
var ErrNotRegular = errors.New("not a regular file")

// NotRegularError says what a path names instead of a regular file.
type NotRegularError struct {
	Kind string // "a FIFO", "a character device", ...
}

func (e *NotRegularError) Error() string { return "not a regular file (" + e.Kind + ")" }

// Is makes errors.Is(err, ErrNotRegular) true.
func (e *NotRegularError) Is(target error) bool { return target == ErrNotRegular }

// TooLargeError says a file holds more bytes than allowed.
type TooLargeError struct {
	Limit int64
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("larger than the limit of %s", Size(e.Limit))
}

// Open opens path for reading when it is a regular file (symbolic links
// are followed to one). It never blocks: a FIFO is opened non-blocking,
// recognised by its mode and closed again.
func Open(path string) (*os.File, os.FileInfo, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w", path, &NotRegularError{Kind: kind(fi.Mode())})
	}
	return f, fi, nil
}

// ReadFile returns the contents of the regular file path, refusing it with
// a *TooLargeError when it holds more than limit bytes (a file that grows
// while it is read included).
func ReadFile(path string, limit int64) ([]byte, error) {
	f, fi, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi.Size() > limit {
		return nil, fmt.Errorf("%s: %w", path, &TooLargeError{Limit: limit})
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: %w", path, &TooLargeError{Limit: limit})
	}
	return data, nil
}

func kind(m os.FileMode) string {
	switch {
	case m&os.ModeNamedPipe != 0:
		return "a FIFO"
	case m&os.ModeCharDevice != 0:
		return "a character device"
	case m&os.ModeDevice != 0:
		return "a block device"
	case m&os.ModeSocket != 0:
		return "a socket"
	case m.IsDir():
		return "a directory"
	}
	return "mode " + m.String()
}

// Size renders a byte count the way limits are written: 4 MiB, 512 KiB,
// and 1.5 MiB for a count that is no whole number of its unit.
func Size(n int64) string {
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		switch {
		case n >= u.mult && n%u.mult == 0:
			return fmt.Sprintf("%d %s", n/u.mult, u.suffix)
		case n >= u.mult:
			return fmt.Sprintf("%.1f %s", float64(n)/float64(u.mult), u.suffix)
		}
	}
	return fmt.Sprintf("%d bytes", n)
}

// SHA256 returns the SHA-256 of the regular file path, in hex, and its
// size: read in a stream, never held.
func SHA256(path string) (string, int64, error) {
	f, _, err := Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("reading %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// DataRegions calls fn with each run [start, end) of the first size bytes
// of f that holds data, in order, skipping holes (SEEK_DATA, SEEK_HOLE; a
// file system without them reports the whole file as data). It moves f's
// offset; read with ReadAt.
func DataRegions(f *os.File, size int64, fn func(start, end int64) error) error {
	for off := int64(0); off < size; {
		data, err := f.Seek(off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			return nil // only a hole is left
		}
		if err != nil {
			return err
		}
		hole, err := f.Seek(data, unix.SEEK_HOLE)
		if err != nil {
			return err
		}
		hole = min(hole, size)
		if data >= hole {
			return nil
		}
		if err := fn(data, hole); err != nil {
			return err
		}
		off = hole
	}
	return nil
}
