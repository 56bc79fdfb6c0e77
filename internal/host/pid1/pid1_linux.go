// Package pid1 holds what either stage of the init needs as the machine's
// first process: a console for its standard streams, the kernel command
// line, the time since boot for the log, and an end that never returns.
// Stage 0 (package stage0, and cmd/stage0 in front of a verified root) and
// stage 1 (package boot) share it.
package pid1

import (
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

// Halt syncs and ends the machine; if reboot(2) fails, PID 1 sleeps
// forever rather than exit (which would panic the kernel).
func Halt(logf func(format string, args ...any), a power.Action) {
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
