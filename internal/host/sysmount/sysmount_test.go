package sysmount

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestMountAllIsIdempotentAndSkipsUnknown(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs root to mount (tests run as root here)")
	}
	dir := t.TempDir()
	ms := []Mount{
		{Source: "tmpfs", Target: filepath.Join(dir, "run"), Type: "tmpfs", Data: "mode=0755"},
		{Source: "x", Target: filepath.Join(dir, "nope"), Type: "nosuchfs", Optional: true},
	}
	t.Cleanup(func() { unix.Unmount(filepath.Join(dir, "run"), unix.MNT_DETACH) })
	for range 2 {
		skipped, err := MountAll(ms)
		if err != nil {
			t.Fatal(err)
		}
		if len(skipped) != 1 || skipped[0] != filepath.Join(dir, "nope") {
			t.Fatalf("skipped %q", skipped)
		}
	}
	if !IsMountPoint(filepath.Join(dir, "run")) || IsMountPoint(dir) {
		t.Fatal("IsMountPoint wrong")
	}
	// Mounted once only: unmounting once leaves a plain directory.
	unix.Unmount(filepath.Join(dir, "run"), 0)
	if IsMountPoint(filepath.Join(dir, "run")) {
		t.Fatal("tmpfs was mounted twice")
	}
	if !IsMountPoint("/") {
		t.Fatal("/ is a mount point")
	}
}

func TestMountAllFailsOnRequired(t *testing.T) {
	_, err := MountAll([]Mount{{Source: "x", Target: filepath.Join(t.TempDir(), "a"), Type: "nosuchfs"}})
	if err == nil {
		t.Fatal("want error")
	}
}

func TestSupported(t *testing.T) {
	if !Supported("tmpfs") || Supported("nosuchfs") {
		t.Fatal("Supported disagrees with /proc/filesystems")
	}
}

// TestProbeReadOnly: a writable directory fails the probe and keeps no
// probe file.
func TestProbeReadOnly(t *testing.T) {
	dir := t.TempDir()
	err := ProbeReadOnly(dir)
	if err == nil || !strings.Contains(err.Error(), "is writable") {
		t.Fatalf("ProbeReadOnly(writable dir) = %v, want 'is writable'", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("probe left %v behind", entries)
	}
	if err := ProbeReadOnly(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("ProbeReadOnly(missing dir) = nil, want an error")
	}
	if os.Geteuid() != 0 {
		t.Fatal("the read-only case mounts a tmpfs: run as root (make test does)")
	}
	ro := filepath.Join(dir, "ro")
	if err := os.Mkdir(ro, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", ro, "tmpfs", unix.MS_RDONLY, ""); err != nil {
		t.Fatal(err)
	}
	defer unix.Unmount(ro, 0)
	if err := ProbeReadOnly(ro); err != nil {
		t.Fatalf("ProbeReadOnly(read-only tmpfs) = %v, want nil", err)
	}
}
