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
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bulkhead-dev/bulkhead/internal/host/datafs"
	"github.com/bulkhead-dev/bulkhead/internal/test/guest"
)

const (
	dev = "/dev/vda"
	mnt = "/mnt"
)

func main() { guest.Run(run) }

func run() error {
	if err := guest.LoadModules(nil); err != nil {
		return err
	}
	if err := guest.WaitFor(dev, 20*time.Second); err != nil {
		return err
	}
	phase := guest.Param("bulkhead.phase")
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
