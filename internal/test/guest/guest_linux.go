// Package guest holds what the PID 1 programs of the qemu boot tests
// (testdata/guest of luks2, datafs, stage0) share: mounting /proc, /sys and
// /dev, loading the modules the test packed under /modules, waiting for a
// device node, reading a parameter off the kernel command line, and ending
// the machine. Each guest keeps its own logic; its console lines are what
// the test asserts, so the strings here ("guest failed: …") stay fixed.
package guest

import (
	"errors"
	"fmt"
	"github.com/bulkhead-dev/bulkhead/internal/bootparam"
	"os"
	"path/filepath"
	"sort"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bulkhead-dev/bulkhead/internal/host/kmod"
	"github.com/bulkhead-dev/bulkhead/internal/host/sysmount"
)

// modulesDir is where the boot tests pack the guest's kernel modules, named
// so that name order loads dependencies first.
const modulesDir = "/modules"

// Run is a guest's main: it mounts the basic file systems, calls run,
// prints "guest failed: ERR" when either fails, and powers off.
func Run(run func() error) {
	err := MountBasics()
	if err == nil {
		err = run()
	}
	if err != nil {
		fmt.Printf("guest failed: %v\n", err)
	}
	PowerOff()
}

// MountBasics mounts proc on /proc, sysfs on /sys and devtmpfs on /dev,
// each unless something is mounted there already (moved there by a switch
// of root).
func MountBasics() error {
	_, err := sysmount.MountAll([]sysmount.Mount{
		{Source: "proc", Target: "/proc", Type: "proc"},
		{Source: "sysfs", Target: "/sys", Type: "sysfs"},
		{Source: "devtmpfs", Target: "/dev", Type: "devtmpfs"},
	})
	return err
}

// LoadModules loads the modules in /modules that want picks (every one
// when want is nil), in name order. It goes on past a module that fails to
// load and returns the failures, joined.
func LoadModules(want func(path string) bool) error {
	mods, err := filepath.Glob(filepath.Join(modulesDir, "*.ko*"))
	if err != nil {
		return err
	}
	sort.Strings(mods)
	var errs []error
	for _, m := range mods {
		if want != nil && !want(m) {
			continue
		}
		errs = append(errs, kmod.Load(m))
	}
	return errors.Join(errs...)
}

// WaitFor waits up to timeout for path (a device node devtmpfs makes once
// its driver has probed) to appear.
func WaitFor(path string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not appear", path)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Param returns the value of name=value on the kernel command line, or ""
// when it is not there.
func Param(name string) string {
	b, _ := os.ReadFile("/proc/cmdline")
	return bootparam.Value(string(b), name)
}

// PowerOff syncs the file systems and powers the machine off.
func PowerOff() { end(unix.LINUX_REBOOT_CMD_POWER_OFF) }

// Restart syncs the file systems and restarts the machine.
func Restart() { end(unix.LINUX_REBOOT_CMD_RESTART) }

// end never returns: PID 1 must not exit, or the kernel panics.
func end(cmd int) {
	unix.Sync()
	if err := unix.Reboot(cmd); err != nil {
		fmt.Printf("guest: reboot: %v\n", err)
	}
	select {}
}
