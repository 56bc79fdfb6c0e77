package stage0

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bulkhead-dev/bulkhead/internal/host/power"
	"github.com/bulkhead-dev/bulkhead/internal/host/sysmount"
)

// Prefix starts every line the init logs, in stage 0 and stage 1.
const Prefix = "bulkhead-init: "

// OpenConsole makes /dev/console the process's standard streams (the
// kernel only provides them when the initramfs has a /dev/console node)
// and returns it.
func OpenConsole() io.Writer {
	if !sysmount.IsMountPoint("/dev") {
		_ = os.MkdirAll("/dev", 0o755)
		_ = unix.Mount("devtmpfs", "/dev", "devtmpfs", unix.MS_NOSUID|unix.MS_NOEXEC, "mode=0755")
	}
	f, err := os.OpenFile("/dev/console", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return os.Stderr
	}
	for fd := 0; fd <= 2; fd++ {
		_ = unix.Dup3(int(f.Fd()), fd, 0)
	}
	return f
}

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

// Halt syncs and ends the machine; if reboot(2) fails, PID 1 sleeps
// forever rather than exit (which would panic the kernel).
func Halt(logf Logf, a power.Action) {
	unix.Sync()
	logf("%s", a)
	if err := power.Halt(a); err != nil {
		logf("%v", err)
	}
	for {
		time.Sleep(time.Hour)
	}
}

// Cmdline is the kernel command line.
func Cmdline() string {
	b, _ := os.ReadFile("/proc/cmdline")
	return strings.TrimSpace(string(b))
}

// Uptime is the time since the kernel started, for the log.
func Uptime() time.Duration {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts) != nil {
		return 0
	}
	return time.Duration(ts.Nano()).Round(time.Millisecond)
}
