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
)

func logf(format string, args ...any) {
	fmt.Printf("bulkhead-init: "+format+"\n", args...)
}

func main() {
	for _, m := range []struct{ dir, fs string }{{"/proc", "proc"}, {"/sys", "sysfs"}, {"/dev", "devtmpfs"}} {
		var st, parent unix.Stat_t
		if unix.Stat(m.dir, &st) == nil && unix.Stat("/", &parent) == nil && st.Dev != parent.Dev {
			continue // moved here by the switch
		}
		_ = os.MkdirAll(m.dir, 0o755)
		if err := unix.Mount(m.fs, m.dir, m.fs, 0, ""); err != nil {
			logf("mount %s: %v", m.dir, err)
		}
	}
	mi, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		logf("%v", err)
		end(unix.LINUX_REBOOT_CMD_RESTART)
	}
	in, err := stage0.InInitramfs(mi)
	mi.Close()
	if err != nil {
		logf("%v", err)
		end(unix.LINUX_REBOOT_CMD_RESTART)
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
	end(unix.LINUX_REBOOT_CMD_RESTART)
}

// stage1 reports what the verified root holds and how it is mapped.
func stage1() {
	hello, err := os.ReadFile("/hello")
	if err != nil {
		logf("reading /hello: %v", err)
		end(unix.LINUX_REBOOT_CMD_RESTART)
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
	end(unix.LINUX_REBOOT_CMD_POWER_OFF)
}

func end(cmd int) {
	unix.Sync()
	_ = unix.Reboot(cmd)
	select {}
}
