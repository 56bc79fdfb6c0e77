package qemu

import (
	"bytes"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestSizeDisk: a smaller disk grows in place, or as a sparse copy under
// snapshot (the image unchanged); a disk at least the size, or size 0,
// is attached as it is.
func TestSizeDisk(t *testing.T) {
	dir := t.TempDir()
	mk := func(name string) (string, []byte) {
		p := filepath.Join(dir, name)
		data := bytes.Repeat([]byte("bulkhead"), 512) // 4 KiB
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		// Data at 0 and at 8 MiB, a hole between, 16 MiB in all.
		f.WriteAt(data, 0)
		f.WriteAt(data, 8<<20)
		f.Truncate(16 << 20)
		f.Close()
		return p, data
	}
	check := func(p string, size int64, data []byte) {
		t.Helper()
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(b)) != size || !bytes.Equal(b[:len(data)], data) || !bytes.Equal(b[8<<20:8<<20+len(data)], data) ||
			bytes.ContainsFunc(b[len(data):8<<20], func(r rune) bool { return r != 0 }) || bytes.ContainsFunc(b[8<<20+len(data):], func(r rune) bool { return r != 0 }) {
			t.Errorf("%s: %d bytes, want %d with the data where it was and zeros elsewhere", p, len(b), size)
		}
	}

	img, data := mk("grow.img")
	got, snap, err := sizeDisk(img, 64<<20, false, dir)
	if err != nil || got != img || snap {
		t.Fatalf("grow in place: %s %v %v", got, snap, err)
	}
	check(img, 64<<20, data)

	img, data = mk("snap.img")
	run := t.TempDir()
	got, snap, err = sizeDisk(img, 64<<20, true, run)
	if err != nil || got == img || filepath.Dir(got) != run || snap {
		t.Fatalf("snapshot: %s %v %v; want a copy in %s attached as is", got, snap, err, run)
	}
	check(img, 16<<20, data) // unchanged
	check(got, 64<<20, data)
	var st syscall.Stat_t
	if err := syscall.Stat(got, &st); err != nil {
		t.Fatal(err)
	}
	if used := st.Blocks * 512; used > 1<<20 {
		t.Errorf("the copy uses %d bytes on disk: its holes were written", used)
	}

	for _, tc := range []struct {
		size int64
		snap bool
	}{{0, true}, {0, false}, {16 << 20, false}, {8 << 20, true}} {
		got, snap, err := sizeDisk(img, tc.size, tc.snap, dir)
		if err != nil || got != img || snap != tc.snap {
			t.Errorf("size %d snapshot %v: %s %v %v, want the image as it is", tc.size, tc.snap, got, snap, err)
		}
		check(img, 16<<20, data)
	}
	if _, _, err := sizeDisk(filepath.Join(dir, "missing.img"), 1<<30, false, dir); err == nil {
		t.Error("a missing disk was accepted")
	}
}
