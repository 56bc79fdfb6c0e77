package disk

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/internal/test/memtest"
)

// patch overwrites b at off in the file at p.
func patch(t *testing.T, p string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func le32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

// readHostile runs ReadBootEntry on p and wants a malformed-image error
// holding want, quickly and within a small memory bound.
func readHostile(t *testing.T, p, want string) {
	t.Helper()
	start := time.Now()
	var err error
	alloc := memtest.Allocated(func() { _, err = ReadBootEntry(p) })
	if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), want) {
		t.Errorf("error %v, want %q", err, want)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v", d)
	}
	if alloc > 16*memtest.MiB {
		t.Errorf("allocated %d MiB", alloc/memtest.MiB)
	}
	t.Logf("allocated %.1f MiB: %v", float64(alloc)/memtest.MiB, err)
}

// espGeometry returns where the ESP of raw starts and its boot sector.
func espGeometry(t *testing.T, raw string) (int64, *bootSector) {
	t.Helper()
	l, err := ReadLayout(raw)
	if err != nil {
		t.Fatal(err)
	}
	esp, ok := l.Partition("esp")
	if !ok {
		t.Fatalf("no esp in %+v", l.Partitions)
	}
	f, err := os.Open(raw)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	g, err := readBootSector(f, esp.Offset, esp.Size)
	if err != nil {
		t.Fatal(err)
	}
	return esp.Offset, g
}

func TestFATChainLoopRefused(t *testing.T) {
	raw := filepath.Join(t.TempDir(), "disk.img")
	if _, err := WriteRaw(context.Background(), raw, fakeInput(t)); err != nil {
		t.Fatal(err)
	}
	start, g := espGeometry(t, raw)
	// FAT[root cluster] = root cluster: the loop.
	patch(t, raw, start+g.fatStart+4*int64(g.rootCluster), le32(g.rootCluster))
	readHostile(t, raw, "cluster chain from 2 loops at cluster 2")
}

func TestFATChainPastTheEndRefused(t *testing.T) {
	raw := filepath.Join(t.TempDir(), "disk.img")
	if _, err := WriteRaw(context.Background(), raw, fakeInput(t)); err != nil {
		t.Fatal(err)
	}
	start, g := espGeometry(t, raw)
	patch(t, raw, start+g.fatStart+4*int64(g.rootCluster), le32(0x0ffffff0))
	readHostile(t, raw, "points to cluster 268435440, past the last")
}

func TestGPTOutOfBoundsRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		off  int64
		val  []byte
		want string
	}{
		{"entry count", SectorSize + 80, le32(1 << 30), "gpt: 1073741824 partition entries"},
		{"entry size", SectorSize + 84, le32(1 << 20), "gpt: partition entry size 1048576"},
		{"partition end", 2*SectorSize + 40, binary.LittleEndian.AppendUint64(nil, 1<<40), "outside the"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := filepath.Join(t.TempDir(), "disk.img")
			if _, err := WriteRaw(context.Background(), raw, fakeInput(t)); err != nil {
				t.Fatal(err)
			}
			patch(t, raw, tc.off, tc.val)
			readHostile(t, raw, tc.want)
			if _, err := ReadLayout(raw); !errors.Is(err, ErrMalformed) {
				t.Errorf("ReadLayout: %v", err)
			}
		})
	}
}

func TestISORecordPastTheEndRefused(t *testing.T) {
	iso := filepath.Join(t.TempDir(), "a.iso")
	if err := WriteISO(context.Background(), iso, fakeISOInput()); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(iso)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := f.Stat()
	off, _, err := findISOFile(f, st.Size(), "EFIBOOT.IMG")
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	// Find the record again to patch its size fields: both-endian.
	data, err := os.ReadFile(iso)
	if err != nil {
		t.Fatal(err)
	}
	lba := le32(uint32(off / isoBlock))
	at := strings.Index(string(data), string(lba)+string(reverse(lba)))
	if at < 2 {
		t.Fatal("EFIBOOT.IMG record not found")
	}
	rec := int64(at - 2)
	patch(t, iso, rec+10, append(le32(0xFFFFF000), reverse(le32(0xFFFFF000))...))
	readHostile(t, iso, "extent of 4294963200 bytes at block")
	// One-sided sizes (little- and big-endian disagree) are refused too.
	patch(t, iso, rec+10, append(le32(1<<20), reverse(le32(1<<21))...))
	readHostile(t, iso, "both-endian fields disagree")
}

func TestCheckChainsAcceptsSharedTails(t *testing.T) {
	// 2 -> 3 -> end, 4 -> 3 (a cross-link, not a loop), 5 free.
	fat := make([]byte, 4*8)
	for c, n := range map[int]uint32{2: 3, 3: 0x0fffffff, 4: 3} {
		binary.LittleEndian.PutUint32(fat[4*c:], n)
	}
	if err := checkChains(fat, 6); err != nil {
		t.Fatal(err)
	}
	binary.LittleEndian.PutUint32(fat[4*3:], 4) // 2 -> 3 -> 4 -> 3
	if err := checkChains(fat, 6); !errors.Is(err, ErrMalformed) {
		t.Fatalf("loop 3 -> 4 -> 3: %v", err)
	}
}
