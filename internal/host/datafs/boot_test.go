package datafs

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/internal/qemu"
	"github.com/bulkhead-dev/bulkhead/internal/test/qemutest"
	"github.com/bulkhead-dev/bulkhead/internal/test/testkernel"
)

// bootTimeout bounds each boot (software emulation, and a file system to
// write).
const bootTimeout = 3 * time.Minute

// TestBootCreateMountGrow boots a real kernel twice on one virtio disk: the
// first boot creates the file system on the empty disk, mounts it and
// writes a file; the disk then grows from 1 GiB to 10 GiB (past the 8 GiB
// that one block of group descriptors covers, so the kernel must switch to
// meta_bg); the second boot keeps the file system, grows it online and
// reads the first file back. e2fsck and debugfs check the result.
func TestBootCreateMountGrow(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Fatalf("boot test needs an amd64 host, not %s", runtime.GOARCH)
	}
	kernel := testkernel.Path(t)
	initrd := guestInitrd(t, testkernel.ModulesDir(t), "virtio_pci", "virtio_blk")
	disk := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(disk, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(disk, 1<<30); err != nil {
		t.Fatal(err)
	}

	out := boot(t, kernel, initrd, disk, 1)
	wantLines(t, out, `ensure created=true in \S+`, `grow grown=false size=1024MiB in \S+`)
	fsck(t, disk)
	if ls := debugfs(t, disk, "ls -l /"); !strings.Contains(ls, "lost+found") || !strings.Contains(ls, "boot-1") {
		t.Fatalf("root after the first boot:\n%s", ls)
	}

	if err := os.Truncate(disk, 10<<30); err != nil {
		t.Fatal(err)
	}
	out = boot(t, kernel, initrd, disk, 2)
	wantLines(t, out, `ensure created=false in \S+`, `grow grown=true size=10240MiB in \S+`, `found phase 1`)
	fsck(t, disk)
	if got := debugfs(t, disk, "cat /boot-2"); !strings.Contains(got, "phase 2") {
		t.Fatalf("/boot-2 holds %q", got)
	}
	stats := debugfs(t, disk, "stats")
	if !strings.Contains(stats, "Block count:              2621440") {
		t.Errorf("file system not grown to 10 GiB:\n%s", stats)
	}
	size, err := Size(disk)
	if err != nil || size != 10<<30 {
		t.Errorf("Size after growing = %d, %v", size, err)
	}
}

// boot runs the guest for one phase and returns its console.
func boot(t *testing.T, kernel, initrd, disk string, phase int) string {
	t.Helper()
	begin := time.Now()
	vm, err := qemu.Start(context.Background(), qemu.Config{
		Kernel:  kernel,
		Initrd:  initrd,
		Cmdline: fmt.Sprintf("console=ttyS0 quiet bulkhead.phase=%d", phase),
		Disk:    disk,
		Timeout: bootTimeout,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Kill()
	res, err := vm.Wait()
	if err != nil {
		t.Fatal(err)
	}
	console := vm.Console()
	if res.Reason != qemu.Poweroff || !strings.Contains(console, "guest done") {
		t.Fatalf("phase %d: %+v; console:\n%s", phase, res, vm.Tail(40))
	}
	t.Logf("phase %d: boot took %s\n%s", phase, time.Since(begin).Round(time.Millisecond), guestLines(console))
	return console
}

func guestLines(console string) string {
	var lines []string
	for _, l := range strings.Split(console, "\n") {
		for _, p := range []string{"ensure ", "grow ", "statfs ", "found "} {
			if strings.HasPrefix(strings.TrimSpace(l), p) {
				lines = append(lines, strings.TrimSpace(l))
			}
		}
	}
	return strings.Join(lines, "\n")
}

func wantLines(t *testing.T, console string, res ...string) {
	t.Helper()
	for _, re := range res {
		if !regexp.MustCompile(`(?m)^` + re + `\r?$`).MatchString(console) {
			t.Fatalf("console lacks a line matching %q:\n%s", re, console)
		}
	}
}

// guestInitrd packs testdata/guest as /init with the named modules
// (dependencies first) under /modules.
func guestInitrd(t *testing.T, modulesDir string, modules ...string) string {
	t.Helper()
	return qemutest.InitrdWith(t, qemutest.BuildMain(t, "./testdata/guest"), modulesDir, modules...)
}
