package disk

import (
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestFATSizes makes FAT32 file systems at sizes where go-diskfs's own FAT
// sizing comes up two entries short (64 MiB is one) and at sizes around
// them, and has fsck.fat check each: it must find nothing to report.
func TestFATSizes(t *testing.T) {
	need(t, "fsck.fat")
	const sector, reserved = 512, 32
	sizes := []int64{
		64 * MiB,                             // (sectors − reserved) divisible by 130
		(reserved + 129 + 130*1010) * sector, // remainder 129
		64*MiB + sector, 65 * MiB, 96 * MiB, 128 * MiB, 200 * MiB,
		260 * MiB, 261 * MiB, // the step to 4 KiB clusters
		300 * MiB,
	}
	dir := t.TempDir()
	for _, size := range sizes {
		p := filepath.Join(dir, "fat.img")
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		err = buildFATFile(f, []espFile{bytesFile("/loader/loader.conf", []byte("timeout 3\n"))}, size, "ESP", 1)
		f.Close()
		if err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		if got := fatFSSize(size); got > size || got < size-64*sector {
			t.Errorf("size %d: file system of %d bytes", size, got)
		}
		boot := make([]byte, 512)
		f, _ = os.Open(p)
		f.ReadAt(boot, 0)
		f.Close()
		total := int64(binary.LittleEndian.Uint32(boot[32:]))
		fatSectors := int64(binary.LittleEndian.Uint32(boot[36:]))
		spc := int64(boot[13])
		clusters := (total - reserved - 2*fatSectors) / spc
		if fatSectors*sector/4 < clusters+2 {
			t.Errorf("size %d: %d clusters but %d FAT entries", size, clusters, fatSectors*sector/4)
		}
		if out, err := exec.Command("fsck.fat", "-n", "-v", p).CombinedOutput(); err != nil {
			t.Errorf("size %d: fsck.fat: %v\n%s", size, err, out)
		}
	}
}
