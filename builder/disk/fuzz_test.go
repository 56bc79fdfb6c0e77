package disk

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/diskfs/go-diskfs/partition/gpt"
)

// fuzzDiskSize is the size of the disk a fuzzed partition table lies on.
const fuzzDiskSize = 64 << 20

// FuzzReadLayout feeds the first sectors of a disk (protective MBR, GPT
// header, entries) to ReadLayout: it must never panic, and a table it
// accepts has every partition inside the disk.
func FuzzReadLayout(f *testing.F) {
	seed := filepath.Join(f.TempDir(), "seed.img")
	sf, err := os.Create(seed)
	if err != nil {
		f.Fatal(err)
	}
	sf.Truncate(fuzzDiskSize)
	tbl := &gpt.Table{LogicalSectorSize: SectorSize, PhysicalSectorSize: SectorSize, ProtectiveMBR: true,
		Partitions: []*gpt.Partition{
			{Index: 1, Start: 2048, End: 4095, Type: gpt.EFISystemPartition, Name: "esp"},
			{Index: 2, Start: 4096, End: 8191, Type: gpt.LinuxFilesystem, Name: "root-a"},
		}}
	if err := tbl.Write(fileDisk{sf}, fuzzDiskSize); err != nil {
		f.Fatal(err)
	}
	head := make([]byte, 34*SectorSize)
	sf.ReadAt(head, 0)
	sf.Close()
	f.Add(head)
	work := filepath.Join(f.TempDir(), "disk.img")
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 64<<10 {
			return
		}
		if err := os.WriteFile(work, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(work, fuzzDiskSize); err != nil {
			t.Fatal(err)
		}
		l, err := ReadLayout(work)
		if err != nil {
			return
		}
		for _, p := range l.Partitions {
			if p.Offset < 0 || p.Size <= 0 || p.Offset+p.Size > fuzzDiskSize {
				t.Fatalf("partition %q at %d+%d outside the %d-byte disk", p.Name, p.Offset, p.Size, fuzzDiskSize)
			}
		}
	})
}

// FuzzFATChains checks the loop guard on FAT tables: a table checkChains
// accepts has every chain end, within range, in fewer steps than there
// are clusters, which is what go-diskfs needs to terminate.
func FuzzFATChains(f *testing.F) {
	fat := make([]byte, 4*16)
	for c, n := range map[int]uint32{0: 0x0ffffff8, 1: 0x0fffffff, 2: 0x0fffffff, 3: 4, 4: 5, 5: 0x0fffffff, 6: 3} {
		binary.LittleEndian.PutUint32(fat[4*c:], n)
	}
	f.Add(fat)
	loop := bytes.Clone(fat)
	binary.LittleEndian.PutUint32(loop[4*2:], 2)
	f.Add(loop)
	f.Fuzz(func(t *testing.T, fat []byte) {
		if len(fat) < 12 || len(fat) > 1<<20 {
			return
		}
		clusters := uint32(len(fat)/4 - 2)
		if checkChains(fat, clusters) != nil {
			return
		}
		for c := uint32(2); c < clusters+2; c++ {
			n, steps := c, uint32(0)
			for n >= 2 && n < 0x0ffffff7 {
				if n >= clusters+2 || steps > clusters {
					t.Fatalf("chain from %d: cluster %d after %d steps", c, n, steps)
				}
				n = binary.LittleEndian.Uint32(fat[4*n:]) & 0x0fffffff
				steps++
			}
		}
	})
}

// FuzzFATBootSector feeds boot sectors to the FAT32 geometry check: it
// must never panic, and geometry it accepts lies inside the file system.
func FuzzFATBootSector(f *testing.F) {
	m, err := buildFAT([]espFile{bytesFile("/loader/loader.conf", []byte("timeout 3\n"))}, minFATSize, "BULKHEAD", 1)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(bytes.Clone(m.b[:512]), int64(minFATSize))
	m.release()
	f.Fuzz(func(t *testing.T, sector []byte, size int64) {
		if len(sector) != 512 || size < 512 || size > 1<<40 {
			return
		}
		g, err := readBootSector(bytes.NewReader(sector), 0, size)
		if err != nil {
			return
		}
		if g.fatStart+g.fatBytes > size || g.rootCluster < 2 || g.rootCluster >= g.clusters+2 || int64(g.clusters)*4+8 > g.fatBytes {
			t.Fatalf("accepted geometry %+v for %d bytes", g, size)
		}
	})
}

// FuzzISORecords feeds root directories to the ISO 9660 record reader:
// it must never panic, and an extent it returns lies inside the image.
func FuzzISORecords(f *testing.F) {
	iso := filepath.Join(f.TempDir(), "seed.iso")
	if err := WriteISO(context.Background(), iso, fakeISOInput()); err != nil {
		f.Fatal(err)
	}
	data, err := os.ReadFile(iso)
	if err != nil {
		f.Fatal(err)
	}
	pvd := data[16*isoBlock:]
	rootOff, rootLen, err := isoExtent(pvd[156:190], int64(len(data)))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(bytes.Clone(data[rootOff:rootOff+rootLen]), int64(len(data)))
	f.Fuzz(func(t *testing.T, dir []byte, size int64) {
		if size < 0 || len(dir) > maxISODirBytes {
			return
		}
		off, n, err := findISORecord(dir, size, "EFIBOOT.IMG")
		if err == nil && (off < 0 || n < 0 || off+n > size) {
			t.Fatalf("extent %d+%d outside the %d-byte image", off, n, size)
		}
	})
}
