// Command guest is the PID 1 of stage0's qemu test. Started from the
// initramfs it runs stage 0 as the bulkhead init does (verified root:
// modules, root device, dm-verity, full read, mount, switch root) and
// reboots when that fails. Started again by the switch into the verified
// root, it prints the root's /hello and the live dm table, and powers off.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/bulkhead-dev/bulkhead/internal/host/dm"
	"github.com/bulkhead-dev/bulkhead/internal/host/stage0"
	"github.com/bulkhead-dev/bulkhead/internal/test/guest"
)

func logf(format string, args ...any) {
	fmt.Printf("bulkhead-init: "+format+"\n", args...)
}

func main() {
	if err := guest.MountBasics(); err != nil {
		logf("%v", err)
	}
	mi, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		logf("%v", err)
		guest.Restart()
	}
	in, err := stage0.InInitramfs(mi)
	mi.Close()
	if err != nil {
		logf("%v", err)
		guest.Restart()
	}
	if !in {
		stage1()
	}
	cmdline, _ := os.ReadFile("/proc/cmdline")
	r, ok, err := stage0.ParseVerifiedRoot(string(cmdline))
	if !ok {
		err = errors.New("no bulkhead.verity= on the command line")
	}
	if err == nil {
		err = stage0.SwitchToVerified(context.Background(), "/init", r, logf)
	}
	var verr *stage0.VerificationError
	if errors.As(err, &verr) {
		logf("stage0: %v", err)
	} else {
		logf("fatal: stage0: %v", err)
	}
	guest.Restart()
}

// stage1 reports what the verified root holds and how it is mapped.
func stage1() {
	hello, err := os.ReadFile("/hello")
	if err != nil {
		logf("reading /hello: %v", err)
		guest.Restart()
	}
	fmt.Printf("verified root says: %s\n", strings.TrimSpace(string(hello)))
	if err := os.WriteFile("/written", nil, 0o644); err != nil {
		fmt.Printf("root is read-only: %v\n", errors.Is(err, unix.EROFS))
	}
	ctl, err := dm.Open()
	if err == nil {
		ts, err := ctl.Table(stage0.DeviceName)
		for _, t := range ts {
			fmt.Printf("live table: %d %d %s %s\n", t.Start, t.Length, t.Type, t.Params)
		}
		if err != nil {
			logf("%v", err)
		}
	}
	guest.PowerOff()
}
