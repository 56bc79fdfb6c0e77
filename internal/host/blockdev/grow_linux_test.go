package blockdev

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

// TestGrowPartitionMounted puts a raw-efi disk on a real loop device with
// ext4 mounted on its data partition, grows the backing file and the loop
// device by 64 MiB, and grows the partition while it is mounted: the
// kernel sees the new size, a second call does nothing, the file system
// is intact and the table on the file passes the oracles.
func TestGrowPartitionMounted(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs root for loop devices (tests run as root here)")
	}
	img, l := rawImage(t)
	loop, err := AttachLoop(img, LoopOptions{PartScan: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := DetachLoop(loop); err != nil {
			t.Error(err)
		}
	})
	f, err := os.OpenFile(loop, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	data := l.Partitions[dataPart-1]
	name := filepath.Base(loop) + "p" + strconv.Itoa(dataPart)
	if _, err := os.Stat(filepath.Join(sysBlock, name)); err != nil {
		// Not every kernel (or container) scans a new loop device: add
		// the partition by hand, as partx does.
		if err := blkpgPartition(f, unix.BLKPG_ADD_PARTITION, dataPart, data.Offset, data.Size); err != nil {
			t.Fatalf("adding partition %s: %v", name, err)
		}
	}
	part := partitionNode(t, name)

	if out, err := exec.Command("mkfs.ext4", "-q", part).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v\n%s", err, out)
	}
	mnt := t.TempDir()
	if err := unix.Mount(part, mnt, "ext4", 0, ""); err != nil {
		t.Fatalf("mounting %s: %v", part, err)
	}
	mounted := true
	unmount := func() {
		if mounted {
			mounted = false
			if err := unix.Unmount(mnt, 0); err != nil {
				t.Errorf("unmounting %s: %v", mnt, err)
			}
		}
	}
	t.Cleanup(unmount)
	if err := os.WriteFile(filepath.Join(mnt, "kept"), []byte("before growing\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	if size, grown, err := GrowPartition(part); err != nil || grown {
		t.Fatalf("GrowPartition before the disk grew = %d, %v, %v; want nothing done", size, grown, err)
	}

	newSize := l.Size + 64<<20
	if err := os.Truncate(img, newSize); err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetInt(int(f.Fd()), unix.LOOP_SET_CAPACITY, 0); err != nil {
		t.Fatalf("LOOP_SET_CAPACITY: %v", err)
	}
	size, grown, err := GrowPartition(part)
	if err != nil || !grown {
		t.Fatalf("GrowPartition = %d, %v, %v", size, grown, err)
	}
	// The backup table takes the last 33 sectors, so the partition ends a
	// MiB before the new end, like the image's did before the old one.
	if want := data.Size + 64<<20; size != want {
		t.Errorf("GrowPartition: size %d, want %d", size, want)
	}
	if got := int64(sectors(sysBlock, name)) * 512; got != size {
		t.Errorf("the kernel sees %s as %d bytes, want %d", name, got, size)
	}
	if size, grown, err := GrowPartition(part); err != nil || grown {
		t.Errorf("GrowPartition again = %d, %v, %v; want nothing done", size, grown, err)
	}

	if b, err := os.ReadFile(filepath.Join(mnt, "kept")); err != nil || string(b) != "before growing\n" {
		t.Errorf("file on the mounted partition: %q, %v", b, err)
	}
	unmount()
	if out, err := exec.Command("e2fsck", "-fn", part).CombinedOutput(); err != nil {
		t.Errorf("e2fsck -fn %s: %v\n%s", part, err, out)
	}
	sgdiskVerify(t, img)
}

// partitionNode returns the /dev node of partition name, making it (and
// removing it at the end) when there is no devtmpfs to.
func partitionNode(t *testing.T, name string) string {
	t.Helper()
	p := filepath.Join("/dev", name)
	if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
		if err := EnsureNode(name, p); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove(p) })
	}
	return p
}
