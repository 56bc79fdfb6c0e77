package boot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/bulkhead-dev/bulkhead/internal/bootparam"
	"github.com/bulkhead-dev/bulkhead/internal/host/blockdev"
	"github.com/bulkhead-dev/bulkhead/internal/host/datafs"
	"github.com/bulkhead-dev/bulkhead/internal/host/sysmount"
	"golang.org/x/sys/unix"
)

// DataParam names the persistent data partition on the kernel command line:
// bulkhead.data=PARTUUID=<guid>.
const DataParam = bootparam.Data

// DataDir is where the data partition (or, without one, a tmpfs) is mounted.
const DataDir = "/var"

// dataFlags are the data partition's mount flags, those of the tmpfs it
// replaces.
const dataFlags = unix.MS_NOSUID | unix.MS_NODEV

// systemMounts are sysmount.System, without the tmpfs on DataDir when a data
// partition is to be mounted there instead.
func systemMounts(withData bool) []sysmount.Mount {
	if !withData {
		return sysmount.System
	}
	return slices.DeleteFunc(slices.Clone(sysmount.System), func(m sysmount.Mount) bool {
		return m.Target == DataDir
	})
}

// mountData finds the data partition named uuid, creates its file system
// on first boot, mounts it on DataDir, grows the partition to the end of a
// disk larger than the image, and the file system to fill the partition.
// On failure DataDir gets the tmpfs, so that the host still comes up.
func (h *host) mountData(ctx context.Context, uuid string) {
	if err := h.data(ctx, uuid); err != nil {
		h.logf("data: %v; %s is a tmpfs", err, DataDir)
		if _, err := sysmount.MountAll(systemMounts(false)); err != nil {
			h.logf("mounts: %v", err)
		}
	}
}

func (h *host) data(ctx context.Context, uuid string) error {
	part, err := blockdev.FindPartUUID(ctx, uuid)
	if err != nil {
		return err
	}
	// An encrypted volume is opened at the partition's new size; a plain
	// file system is made at the image's size and grown online below.
	sealed := sealedData(cmdline())
	if sealed {
		h.growPartition(part)
	}
	dev, err := h.openSealed(ctx, part, sealed)
	if err != nil {
		// The host comes up, /var on a tmpfs, but a boot that cannot
		// open its data is not blessed.
		h.dataErr = err
		return err
	}
	created, err := datafs.Ensure(ctx, dev)
	if err != nil {
		return err
	}
	if created {
		h.logf("data: created file system on %s", dev)
	}
	if err := os.MkdirAll(DataDir, 0o755); err != nil && !errors.Is(err, unix.EROFS) {
		return fmt.Errorf("creating %s: %w", DataDir, err)
	}
	if err := unix.Mount(dev, DataDir, "ext4", dataFlags, ""); err != nil {
		return fmt.Errorf("mounting %s on %s: %w", dev, DataDir, err)
	}
	h.logf("data: mounted %s on %s", dev, DataDir)
	if n, err := countBoot(DataDir); err != nil {
		h.logf("data: counting boots: %v", err)
	} else {
		h.logf("data: boot %d on this data partition", n)
	}
	if !sealed {
		h.growPartition(part)
	}
	grown, err := datafs.Grow(ctx, DataDir, dev)
	if err != nil {
		h.logf("data: %v", err) // mounted: keep it, at its old size
		return nil
	}
	if grown {
		size, err := datafs.Size(dev)
		if err != nil {
			h.logf("data: %v", err)
			return nil
		}
		h.logf("data: grew file system to %d MiB", size>>20)
	}
	return nil
}

// growPartition grows the data partition to the end of a disk larger
// than the image.
func (h *host) growPartition(part string) {
	if size, grown, err := blockdev.GrowPartition(part); err != nil {
		h.logf("data: growing partition: %v", err)
	} else if grown {
		h.logf("data: grew partition to the end of the disk (%d MiB)", size>>20)
	}
}
