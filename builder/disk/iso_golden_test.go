package disk

import (
	"context"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
)

// goldenISO is the digest of goldenISOInput's image.
const goldenISO = "9d95371e3ffd2530f81628938f00ce40b978bcc9c185e9b0511d801cc559ee41"

// goldenISOInput has an initrd larger than fatChunk, as a file, so the boot
// image is written a chunk at a time.
func goldenISOInput(t *testing.T) (files, bytes ISOInput) {
	dir := t.TempDir()
	bytes = fakeISOInput()
	bytes.Entry.Initrd = FromBytes(pseudo(fatChunk+3*MiB+17, "initrd"))
	files = bytes
	for _, s := range []struct {
		name string
		src  *Source
	}{{"bootx64.efi", &files.Bootloader}, {"vmlinuz", &files.Entry.Kernel}, {"initrd", &files.Entry.Initrd}} {
		p := filepath.Join(dir, s.name)
		if err := os.WriteFile(p, s.src.Data, 0o644); err != nil {
			t.Fatal(err)
		}
		*s.src = FromFile(p)
	}
	return files, bytes
}

// TestWriteISOGolden: the image does not depend on whether the inputs are
// files (written in chunks) or bytes, and is the golden one.
func TestWriteISOGolden(t *testing.T) {
	files, bytes := goldenISOInput(t)
	dir := t.TempDir()
	var sums []string
	for name, in := range map[string]ISOInput{"files.iso": files, "bytes.iso": bytes} {
		if err := WriteISO(context.Background(), filepath.Join(dir, name), in); err != nil {
			t.Fatal(err)
		}
		sum := fileSum(t, filepath.Join(dir, name))
		sums = append(sums, hex.EncodeToString(sum[:]))
	}
	if sums[0] != sums[1] {
		t.Errorf("the image from files (or bytes) is %s, from bytes (or files) %s", sums[0], sums[1])
	}
	// A change here changes every iso image: make it on purpose.
	if sums[0] != goldenISO {
		t.Errorf("image sha256 %s, golden %s", sums[0], goldenISO)
	}
}
