package stage0

import (
	"errors"
	"fmt"
	"strings"

	"github.com/bulkhead-dev/bulkhead/internal/bootparam"
	"github.com/bulkhead-dev/bulkhead/internal/host/blockdev"
	"github.com/bulkhead-dev/bulkhead/internal/verity"
)

// RootImgKey is the kernel command-line parameter naming a root image file
// inside the initramfs (kernel+initrd and ISO boots).
const RootImgKey = bootparam.RootImage

// DeviceName is the device-mapper name of the verified root.
const DeviceName = "bulkhead-root"

// RootModules are the modules a verified root may need, in load order;
// those built in or absent are passed over.
var RootModules = []string{"virtio_pci", "virtio_blk", "loop", "dm_mod", "dm_verity", "erofs"}

// VerifiedRoot says where the verified root is and how to check it, as
// the kernel command line tells: bulkhead.verity= with root=PARTUUID= (a
// partition), bulkhead.rootimg= (a file in the initramfs), or neither (a
// unified kernel image, which serves either root slot: the slot is the
// root partition holding the root hash, see FindSlot). The image holds
// the data blocks, then the verity superblock and hash tree.
type VerifiedRoot struct {
	Verity   verity.Params
	PartUUID string // root=PARTUUID=…, lowercase
	Image    string // bulkhead.rootimg=…
	// Slot: the command line names no root; FindSlot picks it.
	Slot bool
}

// String names the root's source for the log.
func (r VerifiedRoot) String() string {
	switch {
	case r.Image != "":
		return r.Image
	case r.Slot:
		return fmt.Sprintf("the root slot holding root hash %x", r.Verity.RootHash)
	}
	return "PARTUUID=" + r.PartUUID
}

// ParseVerifiedRoot reads a VerifiedRoot from a kernel command line. ok is
// false when the command line has no bulkhead.verity=, which means the
// initramfs itself is the root.
func ParseVerifiedRoot(cmdline string) (r VerifiedRoot, ok bool, err error) {
	p, ok, err := verity.FromCmdline(cmdline)
	if !ok || err != nil {
		return VerifiedRoot{}, ok, err
	}
	r.Verity = p
	r.PartUUID, _ = blockdev.PartUUIDFromCmdline(cmdline, "root")
	for _, f := range strings.Fields(cmdline) {
		if v, found := strings.CutPrefix(f, RootImgKey+"="); found {
			r.Image = v
		}
	}
	for _, f := range strings.Fields(cmdline) {
		if strings.HasPrefix(f, "root=") && r.PartUUID == "" {
			return r, true, fmt.Errorf("verified root: %s: want root=PARTUUID=<guid>", f)
		}
	}
	switch {
	case r.PartUUID == "" && r.Image == "":
		r.Slot = true
	case r.PartUUID != "" && r.Image != "":
		return r, true, errors.New("verified root: both root=PARTUUID= and " + RootImgKey + "= given")
	case r.Image != "" && !strings.HasPrefix(r.Image, "/"):
		return r, true, fmt.Errorf("verified root: %s=%s is not an absolute path", RootImgKey, r.Image)
	}
	return r, true, nil
}

// VerificationError means reading the verified root failed: a block does
// not match the hash tree (or could not be read at all). Such a root must
// never be mounted.
type VerificationError struct {
	Device string
	Block  uint64 // first failing data block (4096 bytes)
	Err    error
}

func (e *VerificationError) Error() string {
	return fmt.Sprintf("root verification failed: %s: block %d: %v; refusing to mount it", e.Device, e.Block, e.Err)
}

func (e *VerificationError) Unwrap() error { return e.Err }
