package blockdev

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// WaitTimeout bounds how long FindPartUUID waits for a partition to appear.
const WaitTimeout = 10 * time.Second

// pollInterval is how often FindPartUUID looks again.
const pollInterval = 100 * time.Millisecond

// sysBlock lists the kernel's block devices.
const sysBlock = "/sys/class/block"

// tree is where block devices are listed (sysfs) and opened (/dev); tests
// point it elsewhere.
type tree struct {
	sys string
	dev string
}

var system = tree{sys: sysBlock, dev: "/dev"}

// FindPartUUID returns the /dev path of the partition whose GPT unique
// partition GUID is uuid (any case), reading the GPT of every whole disk
// in /sys/class/block. It polls until the partition appears, ctx ends or
// WaitTimeout passes, and creates the device node if /dev lacks it.
func FindPartUUID(ctx context.Context, uuid string) (devPath string, err error) {
	uuid = strings.ToLower(uuid)
	ctx, cancel := context.WithTimeout(ctx, WaitTimeout)
	defer cancel()
	for {
		name, err := system.findPartUUID(uuid)
		if err != nil {
			return "", fmt.Errorf("finding partition %s: %w", uuid, err)
		}
		if name != "" {
			dev := "/dev/" + name
			if err := EnsureNode(name, dev); err != nil {
				return "", fmt.Errorf("finding partition %s: %w", uuid, err)
			}
			return dev, nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("finding partition %s: not found: %w", uuid, ctx.Err())
		case <-time.After(pollInterval):
		}
	}
}

// findPartUUID looks once; it returns "" when no disk has the partition
// yet. Disks that cannot be read (no medium, no GPT) are passed over.
func (t tree) findPartUUID(uuid string) (string, error) {
	sys := t.sys
	ents, err := os.ReadDir(sys)
	if err != nil {
		return "", err
	}
	for _, e := range ents {
		disk := e.Name()
		if isPartition(sys, disk) || sectors(sys, disk) == 0 {
			continue
		}
		parts, err := t.diskGPT(disk)
		if err != nil {
			continue
		}
		for _, p := range parts {
			if p.UUID == uuid {
				return partitionName(sys, disk, p.Number), nil
			}
		}
	}
	return "", nil
}

// diskGPT reads the GPT of a whole disk.
func (t tree) diskGPT(disk string) ([]Partition, error) {
	dev := filepath.Join(t.dev, disk)
	if t == system {
		if err := EnsureNode(disk, dev); err != nil {
			return nil, err
		}
	}
	f, err := os.Open(dev)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ss := 512
	if b, err := os.ReadFile(filepath.Join(t.sys, disk, "queue", "logical_block_size")); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && n >= 512 {
			ss = n
		}
	}
	return ReadGPT(f, ss)
}

// partitionName is the kernel's name for partition number n of disk
// ("vda2", "nvme0n1p2"), or "" while the kernel has not made it.
func partitionName(sys, disk string, n int) string {
	ents, err := os.ReadDir(filepath.Join(sys, disk))
	if err != nil {
		return ""
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(sys, disk, e.Name(), "partition"))
		if err == nil && strings.TrimSpace(string(b)) == strconv.Itoa(n) {
			return e.Name()
		}
	}
	return ""
}

func isPartition(sys, name string) bool {
	_, err := os.Stat(filepath.Join(sys, name, "partition"))
	return err == nil
}

func sectors(sys, name string) uint64 {
	b, err := os.ReadFile(filepath.Join(sys, name, "size"))
	if err != nil {
		return 0
	}
	n, _ := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	return n
}

// EnsureNode creates the block device node path for the kernel block
// device name (as listed in /sys/class/block) unless path exists.
func EnsureNode(name, path string) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	b, err := os.ReadFile(filepath.Join(sysBlock, name, "dev"))
	if err != nil {
		return fmt.Errorf("creating node for %s: %w", name, err)
	}
	var major, minor uint32
	if _, err := fmt.Sscanf(strings.TrimSpace(string(b)), "%d:%d", &major, &minor); err != nil {
		return fmt.Errorf("creating node for %s: bad dev %q", name, b)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("creating node for %s: %w", name, err)
	}
	err = unix.Mknod(path, unix.S_IFBLK|0o600, int(unix.Mkdev(major, minor)))
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("creating node for %s: %w", name, err)
	}
	return nil
}

// DevPartition is a partition with its device node.
type DevPartition struct {
	Partition
	Dev string // /dev path, made if missing
}

// DiskOf returns every partition of the whole disk that holds the
// partition uuid, with device nodes, in table order.
func DiskOf(uuid string) ([]DevPartition, error) {
	uuid = strings.ToLower(uuid)
	ents, err := os.ReadDir(system.sys)
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		disk := e.Name()
		if isPartition(system.sys, disk) || sectors(system.sys, disk) == 0 {
			continue
		}
		parts, err := system.diskGPT(disk)
		if err != nil || !slices.ContainsFunc(parts, func(p Partition) bool { return p.UUID == uuid }) {
			continue
		}
		out := make([]DevPartition, 0, len(parts))
		for _, p := range parts {
			dp := DevPartition{Partition: p}
			if name := partitionName(system.sys, disk, p.Number); name != "" {
				dp.Dev = "/dev/" + name
				if err := EnsureNode(name, dp.Dev); err != nil {
					return nil, err
				}
			}
			out = append(out, dp)
		}
		return out, nil
	}
	return nil, fmt.Errorf("no disk holds partition %s", uuid)
}

// OfType returns every partition whose GPT type GUID is typeGUID (any
// case) on every whole disk, with device nodes, in disk and table order.
// Partitions the kernel has not made yet are left out; disks that cannot
// be read are passed over.
func OfType(typeGUID string) ([]DevPartition, error) {
	typeGUID = strings.ToLower(typeGUID)
	ents, err := os.ReadDir(system.sys)
	if err != nil {
		return nil, err
	}
	var out []DevPartition
	for _, e := range ents {
		disk := e.Name()
		if isPartition(system.sys, disk) || sectors(system.sys, disk) == 0 {
			continue
		}
		parts, err := system.diskGPT(disk)
		if err != nil {
			continue
		}
		for _, p := range parts {
			name := partitionName(system.sys, disk, p.Number)
			if p.Type != typeGUID || name == "" {
				continue
			}
			dp := DevPartition{Partition: p, Dev: "/dev/" + name}
			if err := EnsureNode(name, dp.Dev); err != nil {
				return nil, err
			}
			out = append(out, dp)
		}
	}
	return out, nil
}
