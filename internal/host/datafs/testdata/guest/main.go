// Command guest is the PID 1 of datafs's boot test. It loads the modules in
// /modules (in name order), waits for /dev/vda, runs datafs.Ensure, mounts
// the file system, grows it, writes /boot-<phase> and checks the files of
// earlier phases, unmounts it and powers off. bulkhead.phase=N on the
// kernel command line names the phase.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bulkhead-dev/bulkhead/internal/host/datafs"
)

const (
	dev = "/dev/vda"
	mnt = "/mnt"
)

func main() {
	if err := run(); err != nil {
		fmt.Printf("guest failed: %v\n", err)
	}
	unix.Sync()
	_ = unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
}

func run() error {
	for _, m := range []struct{ dir, fs string }{{"/proc", "proc"}, {"/sys", "sysfs"}, {"/dev", "devtmpfs"}} {
		_ = os.MkdirAll(m.dir, 0o755)
		if err := unix.Mount(m.fs, m.dir, m.fs, 0, ""); err != nil {
			return fmt.Errorf("mounting %s: %w", m.dir, err)
		}
	}
	if err := loadModules(); err != nil {
		return err
	}
	if err := waitFor(dev, 20*time.Second); err != nil {
		return err
	}
	phase := param("bulkhead.phase")
	ctx := context.Background()

	begin := time.Now()
	created, err := datafs.Ensure(ctx, dev)
	if err != nil {
		return err
	}
	fmt.Printf("ensure created=%v in %s\n", created, time.Since(begin).Round(time.Millisecond))
	_ = os.MkdirAll(mnt, 0o755)
	if err := unix.Mount(dev, mnt, "ext4", unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
		return fmt.Errorf("mounting %s: %w", dev, err)
	}
	begin = time.Now()
	grown, err := datafs.Grow(ctx, mnt, dev)
	if err != nil {
		return err
	}
	size, err := datafs.Size(dev)
	if err != nil {
		return err
	}
	fmt.Printf("grow grown=%v size=%dMiB in %s\n", grown, size>>20, time.Since(begin).Round(time.Millisecond))
	var st unix.Statfs_t
	if err := unix.Statfs(mnt, &st); err != nil {
		return err
	}
	fmt.Printf("statfs total=%dMiB\n", st.Blocks*uint64(st.Bsize)>>20)
	if err := checkPhases(phase); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(mnt, "boot-"+phase), []byte("phase "+phase+"\n"), 0o644); err != nil {
		return err
	}
	unix.Sync()
	if err := unix.Unmount(mnt, 0); err != nil {
		return fmt.Errorf("unmounting: %w", err)
	}
	fmt.Println("guest done")
	return nil
}

// checkPhases reads back the files of the earlier phases.
func checkPhases(phase string) error {
	n, err := strconv.Atoi(phase)
	if err != nil {
		return fmt.Errorf("bulkhead.phase=%q", phase)
	}
	for i := 1; i < n; i++ {
		b, err := os.ReadFile(filepath.Join(mnt, "boot-"+strconv.Itoa(i)))
		if err != nil {
			return err
		}
		fmt.Printf("found %s", b)
	}
	return nil
}

func param(key string) string {
	b, _ := os.ReadFile("/proc/cmdline")
	for _, f := range strings.Fields(string(b)) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			return v
		}
	}
	return ""
}

func loadModules() error {
	mods, _ := filepath.Glob("/modules/*.ko")
	sort.Strings(mods)
	for _, m := range mods {
		f, err := os.Open(m)
		if err != nil {
			return err
		}
		err = unix.FinitModule(int(f.Fd()), "", 0)
		f.Close()
		if err != nil && err != unix.EEXIST {
			return fmt.Errorf("loading %s: %w", m, err)
		}
	}
	return nil
}

func waitFor(path string, timeout time.Duration) error {
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
