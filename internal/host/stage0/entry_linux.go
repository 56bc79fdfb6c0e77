package stage0

import (
	"context"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/bulkhead-dev/bulkhead/internal/host/sysmount"
)

// Running mounts /proc if needed and reports whether the process runs
// from the kernel's initramfs, that is, whether stage 0 is to run.
func Running() (bool, error) {
	if !sysmount.IsMountPoint("/proc") {
		_ = os.MkdirAll("/proc", 0o555)
		if err := unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
			return false, fmt.Errorf("mounting /proc: %w", err)
		}
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false, err
	}
	defer f.Close()
	return InInitramfs(f)
}

// Run switches to the verified root when cmdline has bulkhead.verity=, and
// to a tmpfs copy of the initramfs otherwise, then executes init in the new
// root. It returns only on failure, having logged it; the caller reboots,
// so a root that fails verification is never mounted and a counted boot
// entry runs down.
func Run(ctx context.Context, init, cmdline string, logf Logf) {
	if kept, err := KeepPCRPolicy(); err != nil {
		logf("stage0: keeping the UKI's signed PCR policy: %v", err)
	} else if kept {
		logf("stage0: kept the UKI's signed PCR policy for stage 1")
	}
	r, verified, err := ParseVerifiedRoot(cmdline)
	switch {
	case err != nil:
		logf("fatal: stage0: %v", err)
	case verified:
		logf("stage0: verified root %s", r)
		// Finding the root partition reads /sys/class/block.
		if !sysmount.IsMountPoint("/sys") {
			_ = os.MkdirAll("/sys", 0o555)
			if err := unix.Mount("sysfs", "/sys", "sysfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
				logf("stage0: mounting /sys: %v", err)
			}
		}
		err := SwitchToVerified(ctx, init, r, logf)
		var verr *VerificationError
		if errors.As(err, &verr) {
			logf("stage0: %v", err) // "…; refusing to mount it"
		} else {
			logf("fatal: stage0: %v", err)
		}
	default:
		err := SwitchToTmpfs(init, logf)
		logf("fatal: stage0: %v", err)
	}
}
