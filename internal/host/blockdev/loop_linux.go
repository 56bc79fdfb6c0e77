package blockdev

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// loopControl is the loop driver's control node (misc device 10:237).
const loopControl = "/dev/loop-control"

// LoopOptions say how AttachLoop sets up the device.
type LoopOptions struct {
	ReadOnly bool // LO_FLAGS_READ_ONLY; the file is opened read-only too
	PartScan bool // LO_FLAGS_PARTSCAN: the kernel reads the partition table
}

// AttachLoop binds a free loop device to file and returns its /dev path.
// It uses LOOP_CONFIGURE and falls back to LOOP_SET_FD plus
// LOOP_SET_STATUS64 on kernels without it (before 5.8).
func AttachLoop(file string, opts LoopOptions) (devPath string, err error) {
	mode := os.O_RDWR
	if opts.ReadOnly {
		mode = os.O_RDONLY
	}
	backing, err := os.OpenFile(file, mode|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", fmt.Errorf("attaching loop device: %w", err)
	}
	defer backing.Close()
	for range 10 { // another process may take the free device first
		dev, err := freeLoop()
		if err != nil {
			return "", fmt.Errorf("attaching loop device to %s: %w", file, err)
		}
		err = configure(dev, backing, file, opts)
		if errors.Is(err, unix.EBUSY) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("attaching %s to %s: %w", dev, file, err)
		}
		return dev, nil
	}
	return "", fmt.Errorf("attaching loop device to %s: every free device was taken", file)
}

// DetachLoop unbinds a loop device from its file.
func DetachLoop(dev string) error {
	f, err := os.Open(dev)
	if err != nil {
		return fmt.Errorf("detaching %s: %w", dev, err)
	}
	defer f.Close()
	if err := unix.IoctlSetInt(int(f.Fd()), unix.LOOP_CLR_FD, 0); err != nil {
		return fmt.Errorf("detaching %s: %w", dev, err)
	}
	return nil
}

// freeLoop asks the loop driver for a free device and makes its node.
func freeLoop() (string, error) {
	if _, err := os.Stat(loopControl); errors.Is(err, os.ErrNotExist) {
		if err := unix.Mknod(loopControl, unix.S_IFCHR|0o600, int(unix.Mkdev(10, 237))); err != nil {
			return "", fmt.Errorf("creating %s: %w", loopControl, err)
		}
	}
	ctl, err := os.OpenFile(loopControl, os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", err
	}
	defer ctl.Close()
	n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
	if err != nil {
		return "", fmt.Errorf("finding a free loop device: %w", err)
	}
	name := fmt.Sprintf("loop%d", n)
	if err := EnsureNode(name, "/dev/"+name); err != nil {
		return "", err
	}
	return "/dev/" + name, nil
}

func configure(dev string, backing *os.File, file string, opts LoopOptions) error {
	mode := os.O_RDWR
	if opts.ReadOnly {
		mode = os.O_RDONLY
	}
	loop, err := os.OpenFile(dev, mode|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer loop.Close()
	var info unix.LoopInfo64
	if opts.ReadOnly {
		info.Flags |= unix.LO_FLAGS_READ_ONLY
	}
	if opts.PartScan {
		info.Flags |= unix.LO_FLAGS_PARTSCAN
	}
	copy(info.File_name[:len(info.File_name)-1], lastBytes(filepath.Clean(file), len(info.File_name)-1))
	cfg := unix.LoopConfig{Fd: uint32(backing.Fd()), Info: info}
	err = unix.IoctlLoopConfigure(int(loop.Fd()), &cfg)
	if !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOTTY) {
		return err
	}
	// No LOOP_CONFIGURE: bind, then set the flags.
	if err := unix.IoctlSetInt(int(loop.Fd()), unix.LOOP_SET_FD, int(backing.Fd())); err != nil {
		return err
	}
	if err := unix.IoctlLoopSetStatus64(int(loop.Fd()), &info); err != nil {
		_ = unix.IoctlSetInt(int(loop.Fd()), unix.LOOP_CLR_FD, 0)
		return err
	}
	return nil
}

func lastBytes(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return strings.Clone(s)
}
