package stage0

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/bulkhead-dev/bulkhead/internal/verity"
)

const testVerity = "bulkhead.verity=12:13:0102:" +
	"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

func TestParseVerifiedRoot(t *testing.T) {
	r, ok, err := ParseVerifiedRoot("console=ttyS0 root=PARTUUID=AA-BB " + testVerity + " ro")
	if err != nil || !ok {
		t.Fatalf("partition root: %v, %v", ok, err)
	}
	if r.PartUUID != "aa-bb" || r.Image != "" || r.Verity.DataBlocks != 12 || r.Verity.HashStart != 13 || r.String() != "PARTUUID=aa-bb" {
		t.Errorf("partition root: %+v", r)
	}
	r, ok, err = ParseVerifiedRoot(testVerity + " bulkhead.rootimg=/root.img")
	if err != nil || !ok || r.Image != "/root.img" || r.PartUUID != "" {
		t.Errorf("image root: %+v, %v, %v", r, ok, err)
	}
	if _, ok, err := ParseVerifiedRoot("console=ttyS0 root=PARTUUID=aa"); ok || err != nil {
		t.Errorf("no verity: %v, %v", ok, err)
	}
	r, ok, err = ParseVerifiedRoot("console=ttyS0 " + testVerity)
	if !ok || err != nil || !r.Slot || r.PartUUID != "" || r.Image != "" {
		t.Errorf("no root named (a UKI's command line): %+v, %v, %v; want the slot found by root hash", r, ok, err)
	}
	for _, bad := range []string{
		testVerity + " root=/dev/vda2",
		testVerity + " root=PARTUUID=aa bulkhead.rootimg=/r.img",
		testVerity + " bulkhead.rootimg=r.img",
		"bulkhead.verity=1:2:zz:00 bulkhead.rootimg=/r.img",
	} {
		if _, ok, err := ParseVerifiedRoot(bad); !ok || err == nil {
			t.Errorf("ParseVerifiedRoot(%q) = %v, %v; want an error", bad, ok, err)
		}
	}
}

func TestVerificationErrorLine(t *testing.T) {
	err := error(&VerificationError{Device: "/dev/dm-0", Block: 7, Err: syscall.EIO})
	want := "root verification failed: /dev/dm-0: block 7: input/output error; refusing to mount it"
	if err.Error() != want {
		t.Errorf("got %q, want %q", err, want)
	}
	if !errors.Is(err, syscall.EIO) {
		t.Error("does not unwrap to EIO")
	}
}

// TestVerifyReadsToTheEnd runs Verify on a plain file: it must read all of
// it with direct I/O and notice a device longer than its data blocks. (The
// failing case needs dm-verity; the qemu test covers it.)
func TestVerifyReadsToTheEnd(t *testing.T) {
	p := filepath.Join(t.TempDir(), "dev")
	size := uint64(3*verifyChunk + 5*verity.BlockSize)
	if err := os.WriteFile(p, make([]byte, size), 0o644); err != nil {
		t.Fatal(err)
	}
	n, err := Verify(p, size)
	if err != nil || n != size {
		t.Fatalf("Verify = %d, %v; want %d", n, err, size)
	}
	if _, err := Verify(p, size-verity.BlockSize); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("short parameters: %v", err)
	}
	if _, err := Verify(p, size+verity.BlockSize); err == nil {
		t.Error("device shorter than its parameters: no error")
	}
}

func TestFSType(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "hello"), []byte("hi"), 0o644); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "root.erofs")
	if out, err := exec.Command("mkfs.erofs", "--quiet", img, src).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.erofs (erofs-utils): %v\n%s", err, out)
	}
	if got, err := fsType(img); err != nil || got != "erofs" {
		t.Errorf("fsType(erofs image) = %q, %v", got, err)
	}
	blank := filepath.Join(dir, "blank")
	if err := os.WriteFile(blank, make([]byte, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := fsType(blank); err == nil {
		t.Error("blank device: no error")
	}
}
