// Package boot is the bulkhead init: what PID 1 does from the moment the
// kernel starts it until the machine powers off. Stage 0 (package stage0)
// gets a root runc can use; stage 1 (here) mounts the system file systems,
// hardens the kernel, loads modules, brings up the network, starts
// containerd, runs the onboot containers, supervises the services, and on
// request runs the onshutdown containers and powers off or reboots.
package boot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"strings"
	"time"

	"github.com/bulkhead-dev/bulkhead/internal/init/logline"
	"github.com/bulkhead-dev/bulkhead/internal/init/power"
	"github.com/bulkhead-dev/bulkhead/internal/init/stage0"
	"github.com/bulkhead-dev/bulkhead/internal/init/sysmount"
	"golang.org/x/sys/unix"
)

// Prefix starts every line the init itself logs.
const Prefix = "bulkhead-init: "

// Self is where the init binary lives in the root.
const Self = "/init"

// Run is the init. As PID 1 it never returns: it ends in reboot(2). Not as
// PID 1 it refuses to run.
func Run(ctx context.Context) error {
	if os.Getpid() != 1 {
		return errors.New("must run as PID 1")
	}
	console := logline.Locked(openConsole())
	l := logline.New(Prefix, console)
	log.SetOutput(l)
	log.SetFlags(0)
	logf := func(format string, args ...any) { fmt.Fprintf(l, format+"\n", args...) }

	if in, err := inInitramfs(); err != nil {
		logf("stage0: %v", err)
	} else if in {
		logf("stage0: running from the initramfs (uptime %s)", uptime())
		stage0Run(ctx, logf)
		halt(logf, power.Reboot)
	}
	h := &host{console: console, log: l, logf: logf}
	h.run(ctx)
	return nil // not reached
}

// stage0Run switches to the verified root when the kernel command line
// has bulkhead.verity=, and to a tmpfs copy of the initramfs otherwise. It
// returns only on failure, having logged it; the caller reboots, so a root
// that fails verification is never mounted and a counted boot entry runs
// down.
func stage0Run(ctx context.Context, logf func(string, ...any)) {
	r, verified, err := stage0.ParseVerifiedRoot(cmdline())
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
		err := stage0.SwitchToVerified(ctx, Self, r, stage0.Logf(logf))
		var verr *stage0.VerificationError
		if errors.As(err, &verr) {
			logf("stage0: %v", err) // "…; refusing to mount it"
		} else {
			logf("fatal: stage0: %v", err)
		}
	default:
		err := stage0.SwitchToTmpfs(Self, stage0.Logf(logf))
		logf("fatal: stage0: %v", err)
	}
}

// openConsole makes /dev/console the init's standard streams (the kernel
// only provides them when the initramfs has a /dev/console node) and
// returns it.
func openConsole() io.Writer {
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

// inInitramfs mounts /proc if needed and asks stage0.
func inInitramfs() (bool, error) {
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
	return stage0.InInitramfs(f)
}

// uptime is the time since the kernel started, for the log.
func uptime() time.Duration {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts) != nil {
		return 0
	}
	return time.Duration(ts.Nano()).Round(time.Millisecond)
}

// halt syncs and ends the machine; if reboot(2) fails, PID 1 sleeps
// forever rather than exit (which would panic the kernel).
func halt(logf func(string, ...any), a power.Action) {
	unix.Sync()
	logf("%s", a)
	if err := power.Halt(a); err != nil {
		logf("%v", err)
	}
	for {
		time.Sleep(time.Hour)
	}
}

// cmdline is the kernel command line.
func cmdline() string {
	b, _ := os.ReadFile("/proc/cmdline")
	return strings.TrimSpace(string(b))
}
