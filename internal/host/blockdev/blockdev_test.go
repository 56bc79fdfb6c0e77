package blockdev

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const (
	espUUID  = "0F1E2D3C-4B5A-6978-8796-A5B4C3D2E1F0"
	rootUUID = "8c2b1f1e-2f55-4d3e-9b0a-7a6b5c4d3e2f"
	rootType = "4f68bce3-e8cd-4db1-96e7-fbcaf984b709" // root-x86-64
)

// sfdiskImage writes a 4 MiB GPT disk image with sfdisk: a 1 MiB ESP and
// a named root partition, and returns its path.
func sfdiskImage(t *testing.T) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 4<<20); err != nil {
		t.Fatal(err)
	}
	script := "label: gpt\n" +
		"start=2048, size=2048, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, uuid=" + espUUID + ", name=esp\n" +
		"start=4096, size=2048, type=" + rootType + ", uuid=" + rootUUID + ", name=\"root-a\"\n"
	cmd := exec.Command("sfdisk", "--no-reread", "--no-tell-kernel", img)
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk (util-linux fdisk package): %v\n%s", err, out)
	}
	return img
}

func TestReadGPT(t *testing.T) {
	img := sfdiskImage(t)
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	parts, err := ReadGPT(f, 512)
	if err != nil {
		t.Fatal(err)
	}
	want := []Partition{
		{Number: 1, Type: "c12a7328-f81f-11d2-ba4b-00a0c93ec93b", UUID: strings.ToLower(espUUID), FirstLBA: 2048, LastLBA: 4095, Name: "esp"},
		{Number: 2, Type: rootType, UUID: rootUUID, FirstLBA: 4096, LastLBA: 6143, Name: "root-a"},
	}
	if len(parts) != len(want) {
		t.Fatalf("got %d partitions: %+v", len(parts), parts)
	}
	for i := range want {
		if parts[i] != want[i] {
			t.Errorf("partition %d: got %+v, want %+v", i+1, parts[i], want[i])
		}
	}
	// sfdisk's own dump as the oracle for the GUIDs.
	out, err := exec.Command("sfdisk", "--dump", img).Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range parts {
		if !strings.Contains(strings.ToLower(string(out)), "uuid="+p.UUID) {
			t.Errorf("sfdisk --dump has no uuid=%s:\n%s", p.UUID, out)
		}
	}
}

func TestReadGPTRejectsDamage(t *testing.T) {
	b, err := os.ReadFile(sfdiskImage(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ReadGPT(bytes.NewReader(make([]byte, 1<<20)), 512); !errors.Is(err, ErrNoGPT) {
		t.Errorf("blank disk: %v, want ErrNoGPT", err)
	}
	hdr := bytes.Clone(b)
	hdr[512+72]++ // entries LBA, covered by the header CRC
	if _, err := ReadGPT(bytes.NewReader(hdr), 512); err == nil || !strings.Contains(err.Error(), "header crc") {
		t.Errorf("damaged header: %v", err)
	}
	ent := bytes.Clone(b)
	ent[1024+128+16]++ // second entry's unique GUID
	if _, err := ReadGPT(bytes.NewReader(ent), 512); err == nil || !strings.Contains(err.Error(), "entries: bad crc") {
		t.Errorf("damaged entries: %v", err)
	}
}

func TestPartUUIDFromCmdline(t *testing.T) {
	for _, c := range []struct {
		cmdline, key, want string
		ok                 bool
	}{
		{"console=ttyS0 root=PARTUUID=ABCD-01 ro", "root", "abcd-01", true},
		{"root=partuuid=abcd-01", "root", "abcd-01", true},
		{"root=/dev/vda2", "root", "", false},
		{"root=PARTUUID=", "root", "", false},
		{"myroot=PARTUUID=x", "root", "", false},
		{"root=PARTUUID=a root=PARTUUID=b", "root", "b", true},
		{"bulkhead.data=PARTUUID=4d21b016-b534-45c2-a9fb-5c16e091fd2d", "bulkhead.data", "4d21b016-b534-45c2-a9fb-5c16e091fd2d", true},
		{"", "root", "", false},
	} {
		got, ok := PartUUIDFromCmdline(c.cmdline, c.key)
		if got != c.want || ok != c.ok {
			t.Errorf("PartUUIDFromCmdline(%q, %q) = %q, %v; want %q, %v", c.cmdline, c.key, got, ok, c.want, c.ok)
		}
	}
}

// TestFindPartUUIDInTree finds a partition by PARTUUID in a sysfs-shaped
// tree whose whole disk is an sfdisk image (the real /sys walk is covered
// by the qemu test in package stage0: this machine's kernel does not scan
// partitions of loop devices).
func TestFindPartUUIDInTree(t *testing.T) {
	img := sfdiskImage(t)
	root := t.TempDir()
	tr := tree{sys: filepath.Join(root, "sys"), dev: filepath.Join(root, "dev")}
	write := func(p, s string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(tr.sys, "vdb", "size"), "0\n") // empty: skipped
	write(filepath.Join(tr.sys, "vda", "size"), "8192\n")
	write(filepath.Join(tr.sys, "vda", "vda1", "partition"), "1\n")
	write(filepath.Join(tr.sys, "vda1", "partition"), "1\n")
	if err := os.MkdirAll(tr.dev, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(img, filepath.Join(tr.dev, "vda")); err != nil {
		t.Fatal(err)
	}
	// Partition 2 is in the GPT but the kernel has not made its device yet.
	if name, err := tr.findPartUUID(rootUUID); err != nil || name != "" {
		t.Errorf("before the partition appears: %q, %v", name, err)
	}
	write(filepath.Join(tr.sys, "vda", "vda2", "partition"), "2\n")
	if name, err := tr.findPartUUID(rootUUID); err != nil || name != "vda2" {
		t.Errorf("root partition: %q, %v; want vda2", name, err)
	}
	if name, err := tr.findPartUUID(strings.ToLower(espUUID)); err != nil || name != "vda1" {
		t.Errorf("esp: %q, %v; want vda1", name, err)
	}
	if name, err := tr.findPartUUID("00000000-0000-0000-0000-000000000001"); err != nil || name != "" {
		t.Errorf("absent partition: %q, %v", name, err)
	}
}

func TestFindPartUUIDTimesOut(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := FindPartUUID(ctx, "00000000-0000-0000-0000-000000000001"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("absent partition: %v", err)
	}
}

// TestAttachLoopReadOnly attaches an image to a real loop device, reads it
// back through the device and checks that the device refuses writes.
func TestAttachLoopReadOnly(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs root for loop devices (tests run as root here)")
	}
	img := filepath.Join(t.TempDir(), "root.img")
	content := bytes.Repeat([]byte("bulkhead loop "), 4096)
	if err := os.WriteFile(img, content, 0o644); err != nil {
		t.Fatal(err)
	}
	dev, err := AttachLoop(img, LoopOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := DetachLoop(dev); err != nil {
			t.Error(err)
		}
	})
	name := filepath.Base(dev)
	if ro, err := os.ReadFile("/sys/class/block/" + name + "/ro"); err != nil || strings.TrimSpace(string(ro)) != "1" {
		t.Errorf("%s read-only flag: %q, %v", dev, ro, err)
	}
	if back, err := os.ReadFile("/sys/class/block/" + name + "/loop/backing_file"); err != nil || strings.TrimSpace(string(back)) != img {
		t.Errorf("%s backing file: %q, %v", dev, back, err)
	}
	got, err := os.ReadFile(dev)
	if err != nil || !bytes.Equal(got, content) {
		t.Errorf("reading %s: %d bytes, %v", dev, len(got), err)
	}
	if w, err := os.OpenFile(dev, os.O_WRONLY, 0); err == nil {
		_, werr := w.WriteAt([]byte("x"), 0)
		serr := w.Sync()
		w.Close()
		if werr == nil && serr == nil {
			t.Errorf("%s accepted a write", dev)
		}
	}
}
