// Package stage0 is the part of the init that runs from the initramfs
// before the real root exists. It gets a root runc can use, one of two:
//
//   - the verified root (kernel command line bulkhead.verity=, with
//     root=PARTUUID= or bulkhead.rootimg=): load the few modules it needs,
//     find the partition or attach the image to a read-only loop device,
//     create the dm-verity device with device-mapper ioctls, read it end to
//     end so every block is checked before anything mounts it, re-arm it
//     with restart_on_corruption, mount it read-only and switch root
//     (SwitchToVerified);
//   - otherwise a tmpfs copy of the initramfs, since runc cannot pivot_root
//     out of the kernel's initramfs (SwitchToTmpfs).
//
// Either way the init then runs again from the new root; stage 1 does not
// care which of the two it finds.
package stage0

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/u-root/u-root/pkg/mount"
	"golang.org/x/sys/unix"
)

// NewRoot is where the new root is mounted: the verified root image, or
// the tmpfs the initramfs is copied into.
const NewRoot = "/.bulkhead-root"

// MountPoints are the directories stage 1 mounts on; they must exist in the
// new root, which it remounts read-only.
var MountPoints = []string{"/proc", "/sys", "/dev", "/run", "/tmp", "/var"}

// InInitramfs reports whether "/" is the kernel's initramfs, reading
// /proc/self/mountinfo (mountinfo must come from a mounted /proc).
func InInitramfs(mountinfo io.Reader) (bool, error) {
	fstype := ""
	sc := bufio.NewScanner(mountinfo)
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		fields := strings.Fields(pre)
		if !ok || len(fields) < 5 || fields[4] != "/" {
			continue
		}
		if f := strings.Fields(post); len(f) > 0 {
			fstype = f[0] // the last mount on / is the one in use
		}
	}
	if err := sc.Err(); err != nil {
		return false, fmt.Errorf("reading mountinfo: %w", err)
	}
	if fstype == "" {
		return false, errors.New("reading mountinfo: no mount on /")
	}
	return fstype == "rootfs", nil
}

// Logf receives progress messages.
type Logf func(format string, args ...any)

// SwitchToTmpfs copies the initramfs into a tmpfs mounted on NewRoot,
// switches root into it (moving /dev, /proc, /sys and /run along, and
// emptying the initramfs to free its memory) and executes init there. It
// returns only on failure.
func SwitchToTmpfs(init string, logf Logf) error {
	if err := os.MkdirAll(NewRoot, 0o755); err != nil {
		return fmt.Errorf("creating new root: %w", err)
	}
	if err := unix.Mount("tmpfs", NewRoot, "tmpfs", 0, "mode=0755"); err != nil {
		return fmt.Errorf("mounting new root: %w", err)
	}
	begin := time.Now()
	n, err := Copy("/", NewRoot)
	if err != nil {
		return err
	}
	logf("stage0: copied %d files of the initramfs to tmpfs in %s", n, time.Since(begin).Round(time.Millisecond))
	for _, d := range MountPoints {
		if err := os.MkdirAll(NewRoot+d, 0o755); err != nil {
			return fmt.Errorf("creating mount point %s: %w", d, err)
		}
	}
	if err := os.Remove(NewRoot + NewRoot); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("cleaning new root: %w", err)
	}
	logf("stage0: switching root")
	return mount.SwitchRoot(NewRoot, init)
}
