package blockdev

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// partitionAlign is where grown partitions end: on a MiB, as partitioning
// tools align.
const partitionAlign = 1 << 20

// blkpg is the BLKPG ioctl (linux/fs.h: _IO(0x12, 105)).
const blkpg = 0x1269

// GrowPartition grows the partition device partDev (/dev/vda4), which must
// be the last on its disk, to the end of the disk when the disk is larger
// than its partition table says (an image written to a bigger disk, a
// grown cloud volume), and tells the kernel the new size; the partition
// may be mounted. It returns the partition's new size in bytes; grown is
// false when there was nothing to do.
func GrowPartition(partDev string) (size int64, grown bool, err error) {
	name := filepath.Base(partDev)
	real, err := filepath.EvalSymlinks(filepath.Join(sysBlock, name))
	if err != nil {
		return 0, false, fmt.Errorf("growing %s: %w", partDev, err)
	}
	disk := filepath.Base(filepath.Dir(real))
	num, err := readInt(filepath.Join(sysBlock, name, "partition"))
	if err != nil {
		return 0, false, fmt.Errorf("growing %s: not a partition: %w", partDev, err)
	}
	ss, err := readInt(filepath.Join(sysBlock, disk, "queue", "logical_block_size"))
	if err != nil || ss < 512 {
		ss = 512
	}
	diskDev := filepath.Join("/dev", disk)
	if err := EnsureNode(disk, diskDev); err != nil {
		return 0, false, err
	}
	f, err := os.OpenFile(diskDev, os.O_RDWR, 0)
	if err != nil {
		return 0, false, fmt.Errorf("growing %s: %w", partDev, err)
	}
	defer f.Close()
	diskSize := int64(sectors(sysBlock, disk)) * 512 // sysfs counts 512-byte sectors
	last, grown, err := GrowGPT(f, diskSize, ss, num, partitionAlign)
	if err != nil || !grown {
		return 0, false, err
	}
	parts, err := ReadGPT(f, ss)
	if err != nil {
		return 0, false, err
	}
	p, err := lastPartition(parts, num)
	if err != nil {
		return 0, false, err
	}
	start, length := int64(p.FirstLBA)*int64(ss), int64(last-p.FirstLBA+1)*int64(ss)
	if err := blkpgPartition(f, unix.BLKPG_RESIZE_PARTITION, num, start, length); err != nil {
		return 0, false, fmt.Errorf("growing %s: telling the kernel: %w", partDev, err)
	}
	return length, true, nil
}

// blkpgPartition tells the kernel, with operation op (BLKPG_RESIZE_PARTITION
// or BLKPG_ADD_PARTITION), that partition num of the disk open as f spans
// length bytes from start.
func blkpgPartition(f *os.File, op int32, num int, start, length int64) error {
	p := unix.BlkpgPartition{Start: start, Length: length, Pno: int32(num)}
	arg := unix.BlkpgIoctlArg{
		Op:      op,
		Datalen: int32(unsafe.Sizeof(p)),
		Data:    (*byte)(unsafe.Pointer(&p)),
	}
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), blkpg, uintptr(unsafe.Pointer(&arg)))
	if errno != 0 {
		return errno
	}
	return nil
}

func readInt(p string) (int, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}
