package disk

import (
	"context"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// goldenISO is the digest of goldenISOInput's image.
const goldenISO = "cabedbf9327215cf4ef0080c17bb7ab16facaf7d7afff575268eb2c78115ca6a"

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

// sectionOf is data as a section of a file with other bytes around it.
func sectionOf(t *testing.T, data []byte) Source {
	p := filepath.Join(t.TempDir(), "blob")
	blob := append(append(pseudo(1000, "before"), data...), pseudo(3000, "after")...)
	if err := os.WriteFile(p, blob, 0o644); err != nil {
		t.Fatal(err)
	}
	return FromFileSection(p, 1000, int64(len(data)))
}

// TestWriteISOGolden: the image does not depend on whether the inputs are
// files (written in chunks), sections of files or bytes, and is the golden
// one.
func TestWriteISOGolden(t *testing.T) {
	files, bytes := goldenISOInput(t)
	sections := bytes
	sections.Entry.Kernel = sectionOf(t, bytes.Entry.Kernel.Data)
	sections.Entry.Initrd = sectionOf(t, bytes.Entry.Initrd.Data)
	dir := t.TempDir()
	var sums []string
	for name, in := range map[string]ISOInput{"files.iso": files, "bytes.iso": bytes, "sections.iso": sections} {
		if err := WriteISO(context.Background(), filepath.Join(dir, name), in); err != nil {
			t.Fatal(err)
		}
		sum := fileSum(t, filepath.Join(dir, name))
		sums = append(sums, hex.EncodeToString(sum[:]))
	}
	if sums[0] != sums[1] || sums[0] != sums[2] {
		t.Errorf("the images from files, sections and bytes differ: %v", sums)
	}
	// A section past the end of its file is refused.
	bad := bytes
	bad.Entry.Kernel = FromFileSection(sections.Entry.Kernel.Path, 1000, int64(len(bytes.Entry.Kernel.Data))+3001)
	if err := WriteISO(context.Background(), filepath.Join(dir, "bad.iso"), bad); err == nil || !strings.Contains(err.Error(), "outside") {
		t.Errorf("a kernel section past the end of its file: got %v, want an error saying it lies outside", err)
	}
	// A change here changes every iso image: make it on purpose.
	if sums[0] != goldenISO {
		t.Errorf("image sha256 %s, golden %s", sums[0], goldenISO)
	}
}
