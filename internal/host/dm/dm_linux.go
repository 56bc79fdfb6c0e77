package dm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ControlPath is the device mapper's control node (misc device 10:236).
const ControlPath = "/dev/mapper/control"

const (
	controlMajor    = 10
	controlMinor    = 236
	flagStatusTable = 1 << 4 // DM_STATUS_TABLE_FLAG: the table, not the status
)

// Control is an open device-mapper control node.
type Control struct {
	f *os.File
}

// Open opens the control node, creating it first when devtmpfs has not
// (the dm_mod module must be loaded or built in).
func Open() (*Control, error) {
	if _, err := os.Stat(ControlPath); errors.Is(err, os.ErrNotExist) {
		if err := mknod(ControlPath, unix.S_IFCHR, controlMajor, controlMinor); err != nil {
			return nil, fmt.Errorf("creating device-mapper control node: %w", err)
		}
	}
	f, err := os.OpenFile(ControlPath, os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening device-mapper control: %w", err)
	}
	return &Control{f: f}, nil
}

// Close closes the control node.
func (c *Control) Close() error { return c.f.Close() }

// Device is a mapped device.
type Device struct {
	Name         string
	Major, Minor uint32
}

// Path is the device's node, /dev/dm-MINOR.
func (d Device) Path() string { return fmt.Sprintf("/dev/dm-%d", d.Minor) }

// EnsureNode creates the device's block node unless it exists.
func (d Device) EnsureNode() error {
	if _, err := os.Stat(d.Path()); err == nil {
		return nil
	}
	if err := mknod(d.Path(), unix.S_IFBLK, d.Major, d.Minor); err != nil {
		return fmt.Errorf("creating node for %s: %w", d.Name, err)
	}
	return nil
}

// Version returns the kernel's device-mapper interface version.
func (c *Control) Version() ([3]uint32, error) {
	buf, err := newRequest("", 0, 0)
	if err != nil {
		return [3]uint32{}, err
	}
	if err := c.ioctl(cmdVersion, buf); err != nil {
		return [3]uint32{}, fmt.Errorf("device-mapper version: %w", err)
	}
	var v [3]uint32
	for i := range v {
		v[i] = binary.LittleEndian.Uint32(buf[offVersion+4*i:])
	}
	return v, nil
}

// Create makes device name, loads targets into it and resumes it, so it
// is ready for I/O. flags is 0 or FlagReadOnly. On failure the device is
// removed again.
func (c *Control) Create(name string, flags uint32, targets ...Target) (Device, error) {
	buf, err := newRequest(name, 0, 0)
	if err != nil {
		return Device{}, fmt.Errorf("creating %s: %w", name, err)
	}
	if err := c.ioctl(cmdDevCreate, buf); err != nil {
		return Device{}, fmt.Errorf("creating %s: %w", name, err)
	}
	if err := c.Load(name, flags, targets...); err != nil {
		_ = c.Remove(name)
		return Device{}, err
	}
	dev, err := c.Resume(name)
	if err != nil {
		_ = c.Remove(name)
		return Device{}, err
	}
	return dev, nil
}

// Load loads targets as the inactive table of name; Resume makes it live.
func (c *Control) Load(name string, flags uint32, targets ...Target) error {
	buf, err := encodeTable(name, flags, targets)
	if err != nil {
		return fmt.Errorf("loading table of %s: %w", name, err)
	}
	if err := c.ioctl(cmdTableLoad, buf); err != nil {
		return fmt.Errorf("loading table of %s: %w", name, err)
	}
	return nil
}

// Reload replaces the live table of name with targets: it loads them and
// resumes the device, which suspends it, swaps the tables and resumes it.
func (c *Control) Reload(name string, flags uint32, targets ...Target) error {
	if err := c.Load(name, flags, targets...); err != nil {
		return err
	}
	_, err := c.Resume(name)
	return err
}

// Resume resumes name, making a loaded inactive table live.
func (c *Control) Resume(name string) (Device, error) {
	buf, err := newRequest(name, 0, 0)
	if err != nil {
		return Device{}, fmt.Errorf("resuming %s: %w", name, err)
	}
	if err := c.ioctl(cmdDevSuspend, buf); err != nil {
		return Device{}, fmt.Errorf("resuming %s: %w", name, err)
	}
	h := decodeHeader(buf)
	return Device{Name: name, Major: unix.Major(h.Dev), Minor: unix.Minor(h.Dev)}, nil
}

// Table returns the live table of name.
func (c *Control) Table(name string) ([]Target, error) {
	buf, err := newRequest(name, flagStatusTable, 0)
	if err != nil {
		return nil, fmt.Errorf("reading table of %s: %w", name, err)
	}
	if err := c.ioctl(cmdTableStatus, buf); err != nil {
		return nil, fmt.Errorf("reading table of %s: %w", name, err)
	}
	ts, err := decodeStatus(buf)
	if err != nil {
		return nil, fmt.Errorf("reading table of %s: %w", name, err)
	}
	return ts, nil
}

// Remove removes device name.
func (c *Control) Remove(name string) error {
	buf, err := newRequest(name, 0, 0)
	if err != nil {
		return fmt.Errorf("removing %s: %w", name, err)
	}
	if err := c.ioctl(cmdDevRemove, buf); err != nil {
		return fmt.Errorf("removing %s: %w", name, err)
	}
	return nil
}

func (c *Control) ioctl(cmd uint32, buf []byte) error {
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, c.f.Fd(), uintptr(ioctlNumber(cmd)), uintptr(unsafe.Pointer(&buf[0])))
	if errno != 0 {
		return errno
	}
	return nil
}

func mknod(path string, mode uint32, major, minor uint32) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return unix.Mknod(path, mode|0o600, int(unix.Mkdev(major, minor)))
}
