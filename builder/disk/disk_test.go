package disk

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// pseudo returns n deterministic non-zero-ish bytes.
func pseudo(n int, seed string) []byte {
	b := make([]byte, 0, n+32)
	h := sha256.Sum256([]byte(seed))
	for len(b) < n {
		b = append(b, h[:]...)
		h = sha256.Sum256(h[:])
	}
	return b[:n]
}

// fakeInput is a raw image input with made-up contents: two entries, a root
// image with a zero hole in the middle.
func fakeInput(t *testing.T) RawInput {
	dir := t.TempDir()
	root := append(append(pseudo(3*MiB, "root1"), make([]byte, 8*MiB)...), pseudo(MiB, "root2")...)
	rootFile := filepath.Join(dir, "root.img")
	if err := os.WriteFile(rootFile, root, 0o644); err != nil {
		t.Fatal(err)
	}
	kernelFile := filepath.Join(dir, "vmlinuz")
	if err := os.WriteFile(kernelFile, pseudo(5*MiB+123, "kernel"), 0o644); err != nil {
		t.Fatal(err)
	}
	return RawInput{
		Bootloader: FromBytes(pseudo(100_000, "systemd-boot")),
		Entries: []Entry{
			{Version: "1.0.0", Kernel: FromFile(kernelFile), Initrd: FromBytes(pseudo(2*MiB, "initrd1")), Options: "console=ttyS0", Slot: "a"},
			{Version: "1.1.0", Kernel: FromFile(kernelFile), Initrd: FromBytes(pseudo(3*MiB, "initrd2")), Options: "console=ttyS0 quiet", Slot: "b", Tries: 3},
		},
		RootA: FromFile(rootFile),
		Seed:  []byte("test host"),
	}
}

func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed (apt-get install util-linux mtools dosfstools): %v", tool, err)
		}
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

type sfdiskTable struct {
	PartitionTable struct {
		Label      string `json:"label"`
		ID         string `json:"id"`
		Unit       string `json:"unit"`
		FirstLBA   uint64 `json:"firstlba"`
		LastLBA    uint64 `json:"lastlba"`
		SectorSize int    `json:"sectorsize"`
		Partitions []struct {
			Node  string `json:"node"`
			Start uint64 `json:"start"`
			Size  uint64 `json:"size"`
			Type  string `json:"type"`
			UUID  string `json:"uuid"`
			Name  string `json:"name"`
		} `json:"partitions"`
	} `json:"partitiontable"`
}

func TestWriteRawLayout(t *testing.T) {
	need(t, "sfdisk", "mdir", "mtype", "fsck.fat")
	in := fakeInput(t)
	img := filepath.Join(t.TempDir(), "disk.img")
	l, err := WriteRaw(context.Background(), img, in)
	if err != nil {
		t.Fatal(err)
	}

	if v := run(t, "sfdisk", "--verify", img); !strings.Contains(v, "No errors detected") {
		t.Errorf("sfdisk --verify:\n%s", v)
	}
	var st sfdiskTable
	if err := json.Unmarshal([]byte(run(t, "sfdisk", "--json", img)), &st); err != nil {
		t.Fatal(err)
	}
	pt := st.PartitionTable
	if pt.Label != "gpt" || !strings.EqualFold(pt.ID, l.DiskGUID) {
		t.Errorf("sfdisk: label %s id %s, want gpt %s", pt.Label, pt.ID, l.DiskGUID)
	}
	want := []struct{ name, typ string }{{"esp", TypeESP}, {"root-a", TypeRootX86}, {"root-b", TypeRootX86}, {"data", TypeVar}}
	if len(pt.Partitions) != len(want) || len(l.Partitions) != len(want) {
		t.Fatalf("sfdisk shows %d partitions, layout %d, want %d", len(pt.Partitions), len(l.Partitions), len(want))
	}
	guids := map[string]bool{l.DiskGUID: true}
	for i, w := range want {
		p, lp := pt.Partitions[i], l.Partitions[i]
		if p.Name != w.name || !strings.EqualFold(p.Type, w.typ) || lp.Name != w.name || lp.Type != w.typ {
			t.Errorf("partition %d: sfdisk %s %s, layout %s %s, want %s %s", i, p.Name, p.Type, lp.Name, lp.Type, w.name, w.typ)
		}
		if !strings.EqualFold(p.UUID, lp.GUID) || p.Start != lp.FirstLBA || p.Size != lp.LastLBA-lp.FirstLBA+1 {
			t.Errorf("partition %s: sfdisk %s start %d size %d, layout %+v", w.name, p.UUID, p.Start, p.Size, lp)
		}
		if p.Start%2048 != 0 || p.Size%2048 != 0 || lp.Offset != int64(lp.FirstLBA)*SectorSize {
			t.Errorf("partition %s not MiB-aligned: %+v", w.name, lp)
		}
		guids[lp.GUID] = true
	}
	if len(guids) != 5 {
		t.Errorf("GUIDs not distinct: %v", guids)
	}
	if a, _ := l.Partition("root-a"); a.Size != MinRootSize {
		t.Errorf("root-a size %d, want default %d", a.Size, MinRootSize)
	}
	if e, _ := l.Partition("esp"); e.Size != MinESPSize {
		t.Errorf("esp size %d, want %d", e.Size, MinESPSize)
	}
	fi, err := os.Stat(img)
	if err != nil || fi.Size() != l.Size {
		t.Fatalf("image size %v, layout %d (%v)", fi.Size(), l.Size, err)
	}
	if used := fi.Sys().(*syscall.Stat_t).Blocks * 512; used > 64*MiB {
		t.Errorf("image of %d bytes uses %d on disk: not sparse", fi.Size(), used)
	}

	esp, _ := l.Partition("esp")
	fat := img + "@@" + itoa(esp.Offset)
	disk, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer disk.Close()
	espFile := extract(t, disk, esp)
	fsck := run(t, "fsck.fat", "-n", "-v", espFile)
	if !strings.Contains(fsck, "32 bit entries") {
		t.Errorf("fsck.fat does not see FAT32:\n%s", fsck)
	}
	dir := run(t, "mdir", "-i", fat, "-/", "-b", "::/")
	for _, f := range []string{"::/EFI/BOOT/BOOTX64.EFI", "::/loader/loader.conf", "::/bulkhead/1.0.0/linux", "::/bulkhead/1.1.0/initrd",
		"::/loader/entries/bulkhead-1.0.0.conf", "::/loader/entries/bulkhead-1.1.0+3.conf"} {
		if !strings.Contains(dir, f+"\n") {
			t.Errorf("esp lacks %s; mdir:\n%s", f, dir)
		}
	}
	if got := run(t, "mtype", "-i", fat, "::/loader/loader.conf"); got != loaderConf || strings.Contains(got, "default") {
		t.Errorf("loader.conf = %q", got)
	}
	a, _ := l.Partition("root-a")
	b, _ := l.Partition("root-b")
	d, _ := l.Partition("data")
	conf := run(t, "mtype", "-i", fat, "::/loader/entries/bulkhead-1.1.0+3.conf")
	wantConf := "title Bulkhead 1.1.0\nversion 1.1.0\nsort-key bulkhead\nlinux /bulkhead/1.1.0/linux\ninitrd /bulkhead/1.1.0/initrd\n" +
		"options console=ttyS0 quiet root=PARTUUID=" + b.GUID + " bulkhead.data=PARTUUID=" + d.GUID + "\n"
	if conf != wantConf {
		t.Errorf("entry:\n%s\nwant:\n%s", conf, wantConf)
	}
	if c := run(t, "mtype", "-i", fat, "::/loader/entries/bulkhead-1.0.0.conf"); !strings.Contains(c, "root=PARTUUID="+a.GUID+" ") {
		t.Errorf("entry 1.0.0 does not boot root-a:\n%s", c)
	}
	for path, src := range map[string]Source{"::/EFI/BOOT/BOOTX64.EFI": in.Bootloader, "::/bulkhead/1.0.0/linux": in.Entries[0].Kernel, "::/bulkhead/1.1.0/initrd": in.Entries[1].Initrd} {
		want, _ := src.read()
		if got := run(t, "mtype", "-i", fat, path); got != string(want) {
			t.Errorf("%s: %d bytes differ from the %d-byte input", path, len(got), len(want))
		}
	}
	names, err := ReadEntries(img)
	if err != nil || strings.Join(names, " ") != "bulkhead-1.0.0.conf bulkhead-1.1.0+3.conf" {
		t.Errorf("ReadEntries = %v, %v", names, err)
	}

	root, _ := in.RootA.read()
	if !bytes.Equal(readAt(t, disk, a.Offset, int64(len(root))), root) {
		t.Error("root-a does not start with the root image")
	}
	// Sparse: the root image's zero hole, the rest of root-a, root-b and
	// data hold no data: the next data is the backup GPT in the last MiB.
	if next := nextData(t, disk, a.Offset+3*MiB); next != a.Offset+11*MiB {
		t.Errorf("data after the root image's first 3 MiB at %d, want %d (its hole is written)", next, a.Offset+11*MiB)
	}
	if next := nextData(t, disk, a.Offset+int64(len(root))); next < d.Offset+d.Size {
		t.Errorf("data at %d after the root image, before the end of the data partition %d", next, d.Offset+d.Size)
	}
}

func readAt(t *testing.T, f *os.File, off, n int64) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	return b
}

// nextData is where the file's next allocated data at or after off starts.
func nextData(t *testing.T, f *os.File, off int64) int64 {
	t.Helper()
	n, err := f.Seek(off, unix.SEEK_DATA)
	if err != nil {
		t.Fatalf("seeking data after %d: %v", off, err)
	}
	return n
}

// extract copies a partition into a sparse file of its own.
func extract(t *testing.T, disk *os.File, p Partition) string {
	t.Helper()
	name := filepath.Join(t.TempDir(), p.Name+".img")
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(p.Size); err != nil {
		t.Fatal(err)
	}
	if err := writeNonZero(f, 0, readAt(t, disk, p.Offset, p.Size)); err != nil {
		t.Fatal(err)
	}
	return name
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

const goldenRaw = "072401827fdb2946a1592634f1d8d22f497320a00a7d22428a9f801e2756e8ea"

func TestWriteRawReproducible(t *testing.T) {
	in := fakeInput(t)
	in.ESPSize, in.RootSize, in.DataSize = 64*MiB, 32*MiB, 16*MiB // small images hash fast
	dir := t.TempDir()
	var sums [][32]byte
	for i, name := range []string{"one.img", "two.img"} {
		if i > 0 {
			time.Sleep(2100 * time.Millisecond) // FAT times have 2 s steps
		}
		l, err := WriteRaw(context.Background(), filepath.Join(dir, name), in)
		if err != nil {
			t.Fatal(err)
		}
		sums = append(sums, fileSum(t, filepath.Join(dir, name)))
		// The digest hashed while writing is the file's, read back.
		if want := "sha256:" + hex.EncodeToString(sums[i][:]); l.Digest != want {
			t.Errorf("layout digest %s, the file's %s", l.Digest, want)
		}
	}
	if sums[0] != sums[1] {
		t.Error("two writes of the same input differ")
	}
	// A change here changes every image: make it on purpose.
	if got := hex.EncodeToString(sums[0][:]); got != goldenRaw {
		t.Errorf("image sha256 %s, golden %s", got, goldenRaw)
	}
	in.Seed = []byte("other host")
	l, err := WriteRaw(context.Background(), filepath.Join(dir, "three.img"), in)
	if err != nil {
		t.Fatal(err)
	}
	three := fileSum(t, filepath.Join(dir, "three.img"))
	if three == sums[0] {
		t.Error("another seed gives the same image")
	}
	if want := "sha256:" + hex.EncodeToString(three[:]); l.Digest != want {
		t.Errorf("layout digest %s, the file's %s", l.Digest, want)
	}
	if l.DiskGUID == guid([]byte("test host"), "disk") {
		t.Error("another seed gives the same disk GUID")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 3 {
		t.Errorf("stray files in the output directory: %v", entries)
	}
}

// TestPlanRawSizes: with no sizes given, the ESP and the root slots are
// sized from their content (room for a second version); sizes given win.
func TestPlanRawSizes(t *testing.T) {
	in := RawInput{
		Bootloader: FromBytes(make([]byte, MiB)),
		Entries:    []Entry{{Version: "1", Kernel: FromBytes(make([]byte, 20*MiB)), Initrd: FromBytes(make([]byte, 60*MiB)), Slot: "a"}},
		RootA:      FromBytes(make([]byte, 100*MiB)),
	}
	for _, c := range []struct {
		name              string
		esp, root, data   int64
		wantESP, wantRoot int64
		wantData          int64
	}{
		// ESP: 2 x 81 MiB + 16 MiB = 178 MiB, rounded up to 192; root: 2 x 100 MiB = 200, to 256.
		{name: "from content", wantESP: 192 * MiB, wantRoot: 256 * MiB, wantData: DefaultDataSize},
		{name: "given", esp: 300 * MiB, root: 101 * MiB, data: 10 * MiB, wantESP: 300 * MiB, wantRoot: 101 * MiB, wantData: 10 * MiB},
	} {
		in.ESPSize, in.RootSize, in.DataSize = c.esp, c.root, c.data
		l, err := planRaw(in)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		got := map[string]int64{}
		for _, p := range l.Partitions {
			got[p.Name] = p.Size
		}
		want := map[string]int64{"esp": c.wantESP, "root-a": c.wantRoot, "root-b": c.wantRoot, "data": c.wantData}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: partition sizes %v, want %v", c.name, got, want)
		}
		if total := c.wantESP + 2*c.wantRoot + c.wantData + 2*MiB; l.Size != total {
			t.Errorf("%s: disk size %d, want %d", c.name, l.Size, total)
		}
	}
	in.ESPSize, in.RootSize = 0, 99*MiB
	if _, err := planRaw(in); err == nil || !strings.Contains(err.Error(), "does not fit") {
		t.Errorf("a root slot smaller than the root image: %v", err)
	}
}

func fileSum(t *testing.T, name string) [32]byte {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

// TestReadBack: ReadLayout gives back the layout WriteRaw returned, and
// ReadESPFile the entry it wrote.
func TestReadBack(t *testing.T) {
	in := fakeInput(t)
	p := filepath.Join(t.TempDir(), "disk.img")
	want, err := WriteRaw(context.Background(), p, in)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ReadLayout(p)
	if err != nil {
		t.Fatal(err)
	}
	want.Digest = "" // only the writer knows it
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ReadLayout = %+v\nwant %+v", got, want)
	}
	names, err := ReadEntries(p)
	if err != nil || len(names) == 0 {
		t.Fatalf("ReadEntries = %v, %v", names, err)
	}
	conf, err := ReadESPFile(p, "loader/entries/"+names[0])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(conf), "root=PARTUUID=") {
		t.Errorf("entry %s has no root=PARTUUID=:\n%s", names[0], conf)
	}
	if _, err := ReadESPFile(p, "loader/entries/missing.conf"); err == nil {
		t.Error("ReadESPFile(missing) = nil error")
	}
}

// TestReadBootInitrd: the initrd of the first entry (by file name) comes
// back from a raw image and from an ISO.
func TestReadBootInitrd(t *testing.T) {
	in := fakeInput(t)
	dir := t.TempDir()
	raw := filepath.Join(dir, "disk.img")
	if _, err := WriteRaw(context.Background(), raw, in); err != nil {
		t.Fatal(err)
	}
	// bulkhead-1.0.0.conf sorts before bulkhead-1.1.0+3.conf.
	want := in.Entries[0].Initrd.Data
	if got, err := ReadBootInitrd(raw); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("raw: %d bytes, %v; want %d bytes", len(got), err, len(want))
	}
	iso := filepath.Join(dir, "disk.iso")
	e := in.Entries[1]
	if err := WriteISO(context.Background(), iso, ISOInput{Bootloader: in.Bootloader, Entry: e}); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadBootInitrd(iso); err != nil || !bytes.Equal(got, e.Initrd.Data) {
		t.Fatalf("iso: %d bytes, %v; want %d bytes", len(got), err, len(e.Initrd.Data))
	}
	if b, err := ReadISOFile(iso, "loader/loader.conf"); err != nil || !strings.Contains(string(b), "timeout") {
		t.Fatalf("iso loader.conf %q, %v", b, err)
	}
	if _, err := ReadBootInitrd(in.Entries[0].Kernel.Path); err == nil {
		t.Fatal("ReadBootInitrd of a kernel file succeeded")
	}
}

// TestReadBootEntry: the first entry's options, kernel and initrd.
func TestReadBootEntry(t *testing.T) {
	in := fakeInput(t)
	raw := filepath.Join(t.TempDir(), "disk.img")
	if _, err := WriteRaw(context.Background(), raw, in); err != nil {
		t.Fatal(err)
	}
	be, err := ReadBootEntry(raw)
	if err != nil {
		t.Fatal(err)
	}
	kernel, err := os.ReadFile(in.Entries[0].Kernel.Path)
	if err != nil {
		t.Fatal(err)
	}
	if be.Name != "bulkhead-1.0.0.conf" || !strings.HasPrefix(be.Options, "console=ttyS0 root=PARTUUID=") ||
		!bytes.Equal(be.Kernel, kernel) || !bytes.Equal(be.Initrd, in.Entries[0].Initrd.Data) {
		t.Errorf("entry %s, options %q, kernel %d bytes, initrd %d bytes", be.Name, be.Options, len(be.Kernel), len(be.Initrd))
	}
}

// TestWriteRawScratch: the ESP's scratch file beside the image is gone
// after a write, and after one that fails once it exists.
func TestWriteRawScratch(t *testing.T) {
	in := fakeInput(t)
	in.ESPSize, in.RootSize, in.DataSize = 64*MiB, 32*MiB, 16*MiB
	dir := t.TempDir()
	if _, err := WriteRaw(context.Background(), filepath.Join(dir, "disk.img"), in); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // WriteRaw fails once the ESP is built
	if _, err := WriteRaw(ctx, filepath.Join(dir, "failed.img"), in); err == nil {
		t.Fatal("a cancelled write succeeded")
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || ents[0].Name() != "disk.img" {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Fatalf("directory holds %q, want only disk.img", names)
	}
}

// TestScratchEachData: eachData passes exactly the data of a sparse
// file, holes left out, so that hashing the holes as zeros gives the
// file's digest.
func TestScratchEachData(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "scratch")
	if err != nil {
		t.Fatal(err)
	}
	size := int64(8 * MiB)
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	want := make([]byte, size)
	for _, w := range []struct {
		off int64
		n   int
	}{{0, 100}, {1 * MiB, 3*MiB + 17}, {size - 4096, 4096}} {
		b := bytes.Repeat([]byte{0xa5}, w.n)
		copy(want[w.off:], b)
		if _, err := f.WriteAt(b, w.off); err != nil {
			t.Fatal(err)
		}
	}
	s := &scratchFile{f: f, size: size}
	got := make([]byte, size)
	var data int64
	pos := int64(-1)
	err = s.eachData(func(off int64, b []byte) error {
		if off <= pos {
			return fmt.Errorf("data at %d after %d", off, pos)
		}
		pos = off
		copy(got[off:], b)
		data += int64(len(b))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("eachData's data differ from the file's")
	}
	// Where the file system reports the holes, eachData must leave them
	// out (tmpfs and ext4 do; a file system that reports none cannot
	// show it).
	hole, err := f.Seek(0, unix.SEEK_HOLE)
	if err != nil {
		t.Fatal(err)
	}
	if hole < size && data >= size {
		t.Fatalf("eachData gave %d bytes of a %d-byte file whose first hole is at %d", data, size, hole)
	}
}
