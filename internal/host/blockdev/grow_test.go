package blockdev

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// sfdiskDump is the part of `sfdisk -J` the tests read.
type sfdiskDump struct {
	PartitionTable struct {
		LastLBA    uint64 `json:"lastlba"`
		Partitions []struct {
			Node  string `json:"node"`
			Start uint64 `json:"start"`
			Size  uint64 `json:"size"`
		} `json:"partitions"`
	} `json:"partitiontable"`
}

func sfdiskJSON(t *testing.T, img string) sfdiskDump {
	t.Helper()
	out, err := exec.Command("sfdisk", "-J", img).Output()
	if err != nil {
		t.Fatalf("sfdisk -J: %v", err)
	}
	var d sfdiskDump
	if err := json.Unmarshal(out, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestGrowGPT grows the last partition of a 4 MiB disk made 8 MiB; sfdisk
// (the oracle) finds a valid table with the backup at the new end and the
// partition ending on the last whole MiB before it.
func TestGrowGPT(t *testing.T) {
	img := sfdiskImage(t)
	if err := os.Truncate(img, 8<<20); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, _, err := GrowGPT(f, 8<<20, 512, 1, 1<<20); !errors.Is(err, ErrNotLast) {
		t.Fatalf("growing the ESP (not last): %v, want ErrNotLast", err)
	}
	last, grown, err := GrowGPT(f, 8<<20, 512, 2, 1<<20)
	if err != nil || !grown {
		t.Fatalf("GrowGPT = %d, %v, %v", last, grown, err)
	}
	// 16384 sectors: backup header at 16383, entries 16351-16382, last
	// usable 16350; the partition ends before 7 MiB = sector 14336.
	if last != 14335 {
		t.Errorf("new last lba %d, want 14335", last)
	}
	if out, err := exec.Command("sfdisk", "--verify", img).CombinedOutput(); err != nil || strings.Contains(strings.ToLower(string(out)), "warn") {
		t.Errorf("sfdisk --verify: %v\n%s", err, out)
	}
	d := sfdiskJSON(t, img)
	if d.PartitionTable.LastLBA != 16350 {
		t.Errorf("sfdisk: last usable lba %d, want 16350", d.PartitionTable.LastLBA)
	}
	if p := d.PartitionTable.Partitions; len(p) != 2 || p[1].Start != 4096 || p[1].Size != 14336-4096 {
		t.Errorf("sfdisk: partitions %+v", p)
	}
	parts, err := ReadGPT(f, 512)
	if err != nil || parts[1].UUID != rootUUID || parts[1].LastLBA != 14335 {
		t.Errorf("ReadGPT after growing: %+v, %v", parts, err)
	}

	// Again: nothing to do, nothing written.
	if _, grown, err := GrowGPT(f, 8<<20, 512, 2, 1<<20); err != nil || grown {
		t.Errorf("second GrowGPT: grown %v, %v", grown, err)
	}
}

// TestGrowGPTRefusesBadTable: a primary table with a bad CRC is left alone.
func TestGrowGPTRefusesBadTable(t *testing.T) {
	img := sfdiskImage(t)
	if err := os.Truncate(img, 8<<20); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte{0xff}, 2*512+10); err != nil { // inside the entry array
		t.Fatal(err)
	}
	before, _ := os.ReadFile(img)
	if _, _, err := GrowGPT(f, 8<<20, 512, 2, 1<<20); err == nil || !strings.Contains(err.Error(), "crc") {
		t.Fatalf("GrowGPT on a bad table: %v, want a crc error", err)
	}
	if after, _ := os.ReadFile(img); string(after) != string(before) {
		t.Error("GrowGPT wrote to a table it refused")
	}
}
