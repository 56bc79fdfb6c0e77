// Command stage0 is PID 1 of the initrd that boots a verified root
// (raw-efi, iso-efi, kernel+initrd with bulkhead's init): it checks the
// root image against its dm-verity root hash, mounts it read-only and
// switches into it, where /init (cmd/init) runs stage 1. It is the init's
// stage 0 without containerd linked in: a few MB instead of 26, so the
// initrd does not carry the init twice.
package main

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/bulkhead-dev/bulkhead/internal/host/logline"
	"github.com/bulkhead-dev/bulkhead/internal/host/pid1"
	"github.com/bulkhead-dev/bulkhead/internal/host/power"
	"github.com/bulkhead-dev/bulkhead/internal/host/stage0"
	"github.com/bulkhead-dev/bulkhead/internal/verity"
)

// next is the init the verified root runs.
const next = "/init"

func main() {
	if os.Getpid() != 1 {
		fmt.Fprintln(os.Stderr, "bulkhead stage0: must run as PID 1")
		os.Exit(1)
	}
	l := logline.New(pid1.Prefix, logline.Locked(pid1.OpenConsole()))
	log.SetOutput(l)
	log.SetFlags(0)
	logf := func(format string, args ...any) { fmt.Fprintf(l, format+"\n", args...) }
	if _, err := stage0.Running(); err != nil {
		logf("stage0: %v", err)
	}
	logf("stage0: running from the initramfs (uptime %s)", pid1.Uptime())
	cmdline := pid1.Cmdline()
	if _, verified, _ := stage0.ParseVerifiedRoot(cmdline); !verified {
		logf("fatal: stage0: no %s= on the kernel command line; this initrd boots only a verified root", verity.CmdlineKey)
		pid1.Halt(logf, power.Reboot)
	}
	stage0.Run(context.Background(), next, cmdline, logf)
	pid1.Halt(logf, power.Reboot)
}
