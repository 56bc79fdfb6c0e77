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
	"log"
	"os"
	"time"

	"github.com/bulkhead-dev/bulkhead/internal/host/logline"
	"github.com/bulkhead-dev/bulkhead/internal/host/pid1"
	"github.com/bulkhead-dev/bulkhead/internal/host/power"
	"github.com/bulkhead-dev/bulkhead/internal/host/stage0"
)

// Prefix starts every line the init itself logs.
const Prefix = pid1.Prefix

// Self is where the init binary lives in the root.
const Self = "/init"

// Run is the init. As PID 1 it never returns: it ends in reboot(2). Not as
// PID 1 it refuses to run.
func Run(ctx context.Context) error {
	if os.Getpid() != 1 {
		return errors.New("must run as PID 1")
	}
	console := logline.Locked(pid1.OpenConsole())
	l := logline.New(Prefix, console)
	log.SetOutput(l)
	log.SetFlags(0)
	logf := func(format string, args ...any) { fmt.Fprintf(l, format+"\n", args...) }

	if in, err := stage0.Running(); err != nil {
		logf("stage0: %v", err)
	} else if in {
		logf("stage0: running from the initramfs (uptime %s)", uptime())
		stage0.Run(ctx, Self, cmdline(), logf)
		halt(logf, power.Reboot)
	}
	h := &host{console: console, log: l, logf: logf}
	h.run(ctx)
	return nil // not reached
}

// uptime is the time since the kernel started, for the log.
func uptime() time.Duration { return pid1.Uptime() }

// halt syncs and ends the machine; it does not return.
func halt(logf func(string, ...any), a power.Action) { pid1.Halt(logf, a) }

// cmdline is the kernel command line.
func cmdline() string { return pid1.Cmdline() }
