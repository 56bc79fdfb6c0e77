package datafs

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/u-root/u-root/pkg/cpio"

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

// guestInitrd builds testdata/guest statically and packs it as /init with
// the named modules (dependencies first) under /modules.
func guestInitrd(t *testing.T, modulesDir string, modules ...string) string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "init")
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, "./testdata/guest")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building guest: %v\n%s", err, out)
	}
	init, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	recs := []cpio.Record{
		cpio.Directory("dev", 0o755),
		cpio.CharDev("dev/console", 0o600, 5, 1),
		cpio.StaticFile("init", string(init), 0o755),
		cpio.Directory("modules", 0o755),
	}
	for i, p := range qemutest.ModuleFiles(t, modulesDir, modules...) {
		b, err := os.ReadFile(filepath.Join(modulesDir, p))
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, cpio.StaticFile(fmt.Sprintf("modules/%03d-%s", i, filepath.Base(p)), string(b), 0o644))
	}
	path := filepath.Join(dir, "initrd.cpio")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := cpio.Newc.Writer(f)
	if err := cpio.WriteRecords(w, recs); err != nil {
		t.Fatal(err)
	}
	if err := cpio.WriteTrailer(w); err != nil {
		t.Fatal(err)
	}
	return path
}
