package datafs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const mib = 1 << 20

// image returns a sparse file of size bytes in a temporary directory.
func image(t *testing.T, size int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "data.img")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

// fsck runs e2fsck -fn on img and fails the test unless it finds nothing.
func fsck(t *testing.T, img string) {
	t.Helper()
	out, err := exec.Command("e2fsck", "-fn", img).CombinedOutput()
	if err != nil {
		t.Fatalf("e2fsck -fn: %v\n%s", err, out)
	}
}

// debugfs runs one debugfs request on img.
func debugfs(t *testing.T, img, req string) string {
	t.Helper()
	out, err := exec.Command("debugfs", "-R", req, img).CombinedOutput()
	if err != nil {
		t.Fatalf("debugfs -R %q: %v\n%s", req, err, out)
	}
	return string(out)
}

func TestEnsureCreates(t *testing.T) {
	for _, size := range []int64{MinSize, 64 * mib, 1100 * mib} {
		img := image(t, size)
		created, err := Ensure(context.Background(), img)
		if err != nil {
			t.Fatal(err)
		}
		if !created {
			t.Fatalf("%d MiB: Ensure reported no file system created on an empty image", size/mib)
		}
		fsck(t, img)
		if ls := debugfs(t, img, "ls -l /"); !strings.Contains(ls, "lost+found") {
			t.Errorf("%d MiB: root has no lost+found:\n%s", size/mib, ls)
		}
		stats := debugfs(t, img, "stats")
		for _, want := range []string{"Block size:               4096", "Filesystem volume name:   " + Label, "has_journal", "extent", "64bit"} {
			if !strings.Contains(stats, want) {
				t.Errorf("%d MiB: superblock lacks %q:\n%s", size/mib, want, stats)
			}
		}
		got, err := Size(img)
		if err != nil {
			t.Fatal(err)
		}
		if got != size {
			t.Errorf("Size = %d, want %d", got, size)
		}
	}
}

func TestEnsureKeepsExisting(t *testing.T) {
	img := image(t, 64*mib)
	if _, err := Ensure(context.Background(), img); err != nil {
		t.Fatal(err)
	}
	before := digest(t, img)
	created, err := Ensure(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	if created {
		t.Error("Ensure created a file system over an existing one")
	}
	if !bytes.Equal(before, digest(t, img)) {
		t.Error("Ensure changed an existing file system")
	}
}

func TestEnsureReplacesForeignData(t *testing.T) {
	img := image(t, 64*mib)
	junk := bytes.Repeat([]byte("not a file system "), 1000)
	if err := os.WriteFile(img, junk, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 64*mib); err != nil {
		t.Fatal(err)
	}
	if ok, err := isExt4(img); err != nil || ok {
		t.Fatalf("isExt4 on junk = %v, %v", ok, err)
	}
	created, err := Ensure(context.Background(), img)
	if err != nil || !created {
		t.Fatalf("Ensure = %v, %v; want a new file system", created, err)
	}
	fsck(t, img)
	if ok, err := isExt4(img); err != nil || !ok {
		t.Fatalf("isExt4 after Ensure = %v, %v", ok, err)
	}
}

func TestEnsureTinyDevice(t *testing.T) {
	img := image(t, MinSize-4096)
	if _, err := Ensure(context.Background(), img); err == nil {
		t.Fatal("Ensure on a device below MinSize succeeded")
	}
}

func TestGrowTarget(t *testing.T) {
	img := image(t, 64*mib)
	if _, err := Ensure(context.Background(), img); err != nil {
		t.Fatal(err)
	}
	blocks, target, err := growTarget(img)
	if err != nil {
		t.Fatal(err)
	}
	if blocks != target || blocks != 64*mib/4096 {
		t.Fatalf("growTarget = %d, %d; want both %d", blocks, target, 64*mib/4096)
	}
	if err := os.Truncate(img, 96*mib+100); err != nil {
		t.Fatal(err)
	}
	if _, target, err = growTarget(img); err != nil || target != 96*mib/4096 {
		t.Fatalf("growTarget after enlarging = %d, %v; want %d", target, err, 96*mib/4096)
	}
	grown, err := Grow(context.Background(), t.TempDir(), image(t, 8*mib))
	if err == nil || grown {
		t.Fatalf("Grow on a device without ext4 = %v, %v; want an error", grown, err)
	}
}

func digest(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return s[:]
}

// isExt4 reports whether the image holds an ext4 (or ext2/3) superblock.
func isExt4(img string) (bool, error) {
	f, err := os.Open(img)
	if err != nil {
		return false, err
	}
	defer f.Close()
	sb, err := readSuperblock(f)
	return err == nil && sb.isExt4(), err
}
