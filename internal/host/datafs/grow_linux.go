package datafs

import (
	"context"
	"fmt"
	"io"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ext4IocResizeFS is EXT4_IOC_RESIZE_FS, _IOW('f', 16, __u64): grow a
// mounted ext4 file system to the given block count.
const ext4IocResizeFS = 0x40086610

// Grow grows the ext4 file system on dev, mounted on mountpoint, online to
// the size of dev when dev is larger, and reports whether it grew. A
// remainder smaller than one block is left unused.
func Grow(ctx context.Context, mountpoint, dev string) (grown bool, err error) {
	blocks, target, err := growTarget(dev)
	if err != nil || target <= blocks {
		return false, err
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	dir, err := os.Open(mountpoint)
	if err != nil {
		return false, fmt.Errorf("growing file system: %w", err)
	}
	defer dir.Close()
	n := target
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, dir.Fd(), ext4IocResizeFS, uintptr(unsafe.Pointer(&n)))
	if errno != 0 {
		return false, fmt.Errorf("growing file system on %s to %d blocks: %w", mountpoint, target, errno)
	}
	return true, nil
}

// growTarget returns the file system's block count on dev and the block
// count that fills dev.
func growTarget(dev string) (blocks, target uint64, err error) {
	f, err := os.Open(dev)
	if err != nil {
		return 0, 0, fmt.Errorf("opening data device: %w", err)
	}
	defer f.Close()
	sb, err := readSuperblock(f)
	if err != nil {
		return 0, 0, err
	}
	if !sb.isExt4() {
		return 0, 0, fmt.Errorf("growing file system: %s holds no ext4 file system", dev)
	}
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return 0, 0, fmt.Errorf("finding device size: %w", err)
	}
	return sb.blocks(), uint64(size / sb.blockSize()), nil
}
