package blockdev

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulkhead-dev/bulkhead/builder/disk"
	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/partition/gpt"
)

// dataPart is the data partition's number on a raw-efi disk (esp, root-a,
// root-b, data).
const dataPart = 4

// rawImage writes a small raw-efi disk with builder/disk, as bulkhead
// builds it (the data partition last, the backup GPT in the last MiB),
// and returns its path and layout.
func rawImage(t *testing.T) (string, *disk.Layout) {
	t.Helper()
	img := filepath.Join(t.TempDir(), "disk.img")
	l, err := disk.WriteRaw(context.Background(), img, disk.RawInput{
		Bootloader: disk.FromBytes([]byte("systemd-boot")),
		Entries: []disk.Entry{{Version: "1.0.0", Kernel: disk.FromBytes([]byte("kernel")),
			Initrd: disk.FromBytes([]byte("initrd")), Slot: "a"}},
		RootA:    disk.FromBytes(bytes.Repeat([]byte("root"), 1<<18)),
		ESPSize:  64 << 20,
		RootSize: 2 << 20,
		DataSize: 8 << 20,
		Seed:     []byte(t.Name()),
	})
	if err != nil {
		t.Fatal(err)
	}
	return img, l
}

// sgdiskVerify runs the oracles, gdisk's `sgdisk -v`, `sfdisk --verify`
// and `fdisk -l` (which checks that the protective MBR covers the disk),
// and fails unless they find no problem at all.
func sgdiskVerify(t *testing.T, img string) {
	t.Helper()
	out, err := exec.Command("sgdisk", "-v", img).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "No problems found") || strings.Contains(strings.ToLower(string(out)), "warning") {
		t.Errorf("sgdisk -v (apt-get install gdisk): %v\n%s", err, out)
	}
	for _, args := range [][]string{{"sfdisk", "--verify", img}, {"fdisk", "-l", img}} {
		out, err = exec.Command(args[0], args[1:]...).CombinedOutput()
		if low := strings.ToLower(string(out)); err != nil || strings.Contains(low, "warn") || strings.Contains(low, "mismatch") {
			t.Errorf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

func growFile(t *testing.T, img string, part int) (uint64, bool, error) {
	t.Helper()
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return GrowGPT(f, st.Size(), 512, part, 1<<20)
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestGrowGPTRawEFI grows the data partition of a bulkhead raw-efi disk
// that was made 64 MiB and 300 sectors larger (a disk whose size is not
// a whole MiB): sgdisk and sfdisk find a valid table, the partition ends
// on the last whole MiB before the new backup table, every byte outside
// the tables is unchanged, and go-diskfs reads the table back. Grown a
// second time, it grows again.
func TestGrowGPTRawEFI(t *testing.T) {
	img, l := rawImage(t)
	sgdiskVerify(t, img)
	size := l.Size + 64<<20 + 300*512
	if err := os.Truncate(img, size); err != nil {
		t.Fatal(err)
	}
	before := readFile(t, img)
	last, grown, err := growFile(t, img, dataPart)
	if err != nil || !grown {
		t.Fatalf("GrowGPT = %d, %v, %v", last, grown, err)
	}
	lastLBA := uint64(size/512) - 1
	wantLast := uint64((lastLBA-33+1)*512/(1<<20)*(1<<20)/512) - 1
	if last != wantLast {
		t.Errorf("new last lba %d, want %d", last, wantLast)
	}
	sgdiskVerify(t, img)

	d := sfdiskJSON(t, img)
	if d.PartitionTable.LastLBA != lastLBA-33 {
		t.Errorf("sfdisk: last usable lba %d, want %d", d.PartitionTable.LastLBA, lastLBA-33)
	}
	parts := d.PartitionTable.Partitions
	if len(parts) != 4 {
		t.Fatalf("sfdisk: partitions %+v", parts)
	}
	for i, p := range l.Partitions {
		end := p.LastLBA
		if i == dataPart-1 {
			end = wantLast
		}
		if parts[i].Start != p.FirstLBA || parts[i].Start+parts[i].Size-1 != end {
			t.Errorf("sfdisk: partition %d spans %d+%d, want %d-%d", i+1, parts[i].Start, parts[i].Size, p.FirstLBA, end)
		}
	}

	// Only the tables changed: the primary (sectors 0-33), the old backup
	// (its entries and header in the old last MiB) and the new backup.
	after := readFile(t, img)
	oldBackup := l.Size - 33*512
	for _, r := range [][2]int64{{0, 34 * 512}, {oldBackup, l.Size}, {size - 33*512, size}} {
		clear(before[r[0]:r[1]])
		clear(after[r[0]:r[1]])
	}
	if !bytes.Equal(before, after) {
		t.Error("GrowGPT wrote outside the partition tables")
	}

	back, err := disk.ReadLayout(img) // go-diskfs
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := back.Partition("data"); !ok || p.LastLBA != wantLast || p.GUID != l.Partitions[dataPart-1].GUID {
		t.Errorf("go-diskfs reads the data partition as %+v", p)
	}

	// Grown again: the backup moves from the previous end to the new one.
	size += 16 << 20
	if err := os.Truncate(img, size); err != nil {
		t.Fatal(err)
	}
	last, grown, err = growFile(t, img, dataPart)
	if err != nil || !grown || last != wantLast+16<<11 {
		t.Errorf("second GrowGPT = %d, %v, %v; want %d", last, grown, err, wantLast+16<<11)
	}
	sgdiskVerify(t, img)
}

// TestGrowGPTNothingToDo: a disk of the image's size, or larger by too
// little for the partition to reach the next MiB once the backup table
// has moved (32 sectors; the image leaves the table a whole MiB), is left
// byte for byte as it was.
func TestGrowGPTNothingToDo(t *testing.T) {
	img, l := rawImage(t)
	for _, size := range []int64{l.Size, l.Size + 32*512} {
		if err := os.Truncate(img, size); err != nil {
			t.Fatal(err)
		}
		before := readFile(t, img)
		last, grown, err := growFile(t, img, dataPart)
		if err != nil || grown {
			t.Errorf("disk of %d bytes: GrowGPT = %d, %v, %v; want nothing done", size, last, grown, err)
		}
		if !bytes.Equal(before, readFile(t, img)) {
			t.Errorf("disk of %d bytes: GrowGPT wrote with nothing to do", size)
		}
	}
}

// TestGrowGPTRefuses: a partition that is not last, a primary header whose
// CRC does not hold, and a disk smaller than its table are all refused,
// the disk untouched.
func TestGrowGPTRefuses(t *testing.T) {
	for _, c := range []struct {
		name  string
		part  int
		spoil func(f *os.File, l *disk.Layout) error
		want  func(error) bool
	}{
		{"not last", 3, nil, func(err error) bool { return errors.Is(err, ErrNotLast) }},
		{"no such partition", 9, nil, func(err error) bool { return err != nil && strings.Contains(err.Error(), "no partition 9") }},
		{"header crc", dataPart, func(f *os.File, _ *disk.Layout) error {
			return flip(f, 512+hdrLastUsable) // the last usable LBA
		}, func(err error) bool { return err != nil && strings.Contains(err.Error(), "header crc") }},
		{"entries crc", dataPart, func(f *os.File, _ *disk.Layout) error {
			return flip(f, 2*512+3*128+entryLastLBA) // the data partition's last LBA
		}, func(err error) bool { return err != nil && strings.Contains(err.Error(), "entries: bad crc") }},
		{"disk smaller than its table", dataPart, func(f *os.File, l *disk.Layout) error {
			return f.Truncate(l.Size - 1<<20)
		}, func(err error) bool { return err != nil && strings.Contains(err.Error(), "beyond") }},
	} {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			img, l := rawImage(t)
			f, err := os.OpenFile(img, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if c.spoil != nil {
				if err := c.spoil(f, l); err != nil {
					t.Fatal(err)
				}
			}
			st, _ := f.Stat()
			if st.Size() >= l.Size {
				if err := f.Truncate(st.Size() + 32<<20); err != nil {
					t.Fatal(err)
				}
			}
			before := readFile(t, img)
			st, _ = f.Stat()
			if _, grown, err := GrowGPT(f, st.Size(), 512, c.part, 1<<20); grown || !c.want(err) {
				t.Errorf("GrowGPT: grown %v, %v", grown, err)
			}
			if !bytes.Equal(before, readFile(t, img)) {
				t.Error("GrowGPT wrote to a disk it refused")
			}
		})
	}
}

// flip inverts the byte at off.
func flip(f *os.File, off int64) error {
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		return err
	}
	_, err := f.WriteAt([]byte{^b[0]}, off)
	return err
}

// TestGrowGPTSmallGrowth: a disk of 8200 sectors whose last partition
// fills it up to the last usable sector (8166), unaligned, grows by 32
// sectors: the partition reaches the MiB at sector 8192, and the new
// backup entry array (8199-8230) starts on the old backup header (8199),
// which must then be left to the new table rather than cleared.
func TestGrowGPTSmallGrowth(t *testing.T) {
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 8200*512); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("sgdisk", "-o", "-n", "1:2048:4095", "-n", "2:4096:8166", img).CombinedOutput(); err != nil {
		t.Fatalf("sgdisk: %v\n%s", err, out)
	}
	sgdiskVerify(t, img)
	if err := os.Truncate(img, 8232*512); err != nil {
		t.Fatal(err)
	}
	if last, grown, err := growFile(t, img, 2); err != nil || !grown || last != 8191 {
		t.Fatalf("GrowGPT = %d, %v, %v; want 8191, true", last, grown, err)
	}
	sgdiskVerify(t, img)
}

// TestGrowGPT4K grows the last partition of a disk with 4096-byte logical
// sectors, its table written by go-diskfs: fdisk, told the sector size,
// finds the grown table valid, and go-diskfs reads it back.
func TestGrowGPT4K(t *testing.T) {
	const ss = 4096
	img := filepath.Join(t.TempDir(), "disk.img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	table := &gpt.Table{
		LogicalSectorSize: ss, PhysicalSectorSize: ss, ProtectiveMBR: true,
		GUID: "9bd2fbd8-1a0c-4c7e-9c5d-4a3b2c1d0e0f",
		Partitions: []*gpt.Partition{
			{Index: 1, Start: 256, End: 511, Type: gpt.EFISystemPartition, Name: "esp", GUID: espUUID},
			{Index: 2, Start: 512, End: 767, Type: gpt.LinuxFilesystem, Name: "data", GUID: rootUUID},
		},
	}
	w, err := file.New(f, false).Writable()
	if err != nil {
		t.Fatal(err)
	}
	if err := table.Write(w, 4<<20); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(12 << 20); err != nil {
		t.Fatal(err)
	}
	last, grown, err := GrowGPT(f, 12<<20, ss, 2, 1<<20)
	// 3072 sectors: backup header at 3071, entries 3067-3070 (16 KiB),
	// last usable 3066; the partition ends before 11 MiB = sector 2816.
	if err != nil || !grown || last != 2815 {
		t.Fatalf("GrowGPT = %d, %v, %v; want 2815, true", last, grown, err)
	}
	// fdisk's v(erify) command, then q(uit) without writing.
	cmd := exec.Command("fdisk", "-b", "4096", img)
	cmd.Stdin = strings.NewReader("p\nv\nq\n")
	out, err := cmd.CombinedOutput()
	low := strings.ToLower(string(out))
	if err != nil || strings.Contains(low, "corrupt") || strings.Contains(low, "mismatch") || !strings.Contains(low, "no errors detected") {
		t.Errorf("fdisk -b 4096, v: %v\n%s", err, out)
	}
	found := false
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Fields(l); len(f) > 3 && strings.HasSuffix(f[0], "disk.img2") {
			found = f[1] == "512" && f[2] == "2815"
		}
	}
	if !found {
		t.Errorf("fdisk does not list partition 2 as sectors 512-2815:\n%s", out)
	}
	back, err := gpt.Read(file.New(f, true), ss, ss)
	if err != nil {
		t.Fatalf("go-diskfs: %v", err)
	}
	if p := back.Partitions[1]; p.End != 2815 || !strings.EqualFold(p.GUID, rootUUID) {
		t.Errorf("go-diskfs reads partition 2 as %+v", p)
	}
}
