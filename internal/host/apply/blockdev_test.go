package apply_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulkhead-dev/bulkhead/internal/host/apply"
)

// TestApplyToABlockDevice: the same update onto a real block device (a
// loop device over the slot file), read back through the device and
// accepted by veritysetup. It needs root and loop devices.
func TestApplyToABlockDevice(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a loop device")
	}
	f := newFixture(t)
	out, err := exec.Command("losetup", "--find", "--show", f.slot).CombinedOutput()
	if err != nil {
		t.Skipf("no loop device: %v: %s", err, out)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command("losetup", "-d", dev).Run() })
	s, size, err := apply.OpenSlot(dev)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if size != rootSize {
		t.Fatalf("device size %d, want %d", size, rootSize)
	}
	tg := apply.Target{Slot: s, SlotSize: size, SlotGUID: f.layoutGUID("root-b"), ESP: f.esp}
	if _, err := apply.Apply(t.Context(), apply.File(f.bundle(t, f.new.input(), f.key)), f.host, tg, apply.WithClock(clock)); err != nil {
		t.Fatal(err)
	}
	veritysetupVerify(t, dev, f.new.img)
}

// TestApplyOnAVFATESP: the update onto an ESP that is a real FAT32 file
// system mounted by the kernel (renames, directory syncs and '+' in names
// as the host sees them). It needs root, mkfs.vfat and loop mounts.
func TestApplyOnAVFATESP(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a file system")
	}
	f := newFixture(t)
	img := filepath.Join(f.dir, "esp.vfat")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 64<<20); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.vfat", "-F", "32", img).CombinedOutput(); err != nil {
		t.Skipf("mkfs.vfat: %v: %s", err, out)
	}
	mnt := filepath.Join(f.dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-o", "loop", img, mnt).CombinedOutput(); err != nil {
		t.Skipf("mount: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", mnt).Run() })
	if out, err := exec.Command("cp", "-r", f.esp+"/.", mnt).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
	f.esp = mnt
	res, err := f.apply(t, f.bundle(t, f.new.input(), f.key), f.host)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path string
		want []byte
	}{
		{res.Entry, nil},
		{"bulkhead/" + newVersion + "/linux", f.new.kernel},
		{"bulkhead/" + newVersion + "/initrd", f.new.initrd},
		{"loader/entries/" + f.host.Entry, nil},
	} {
		got, err := os.ReadFile(filepath.Join(mnt, c.path))
		if err != nil || c.want != nil && !bytes.Equal(got, c.want) {
			t.Errorf("%s on the FAT ESP: %v", c.path, err)
		}
	}
}
