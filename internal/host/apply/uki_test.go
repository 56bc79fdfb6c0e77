package apply_test

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/bulkhead-dev/bulkhead/builder/bundler"
	"github.com/bulkhead-dev/bulkhead/builder/disk"
	"github.com/bulkhead-dev/bulkhead/builder/uki"
	"github.com/bulkhead-dev/bulkhead/internal/host/apply"
	"github.com/bulkhead-dev/bulkhead/internal/sdbootdeb"
	"github.com/bulkhead-dev/bulkhead/internal/update"
)

// ukiOf is the version's unified kernel image, as the builder makes it for
// raw-efi and the bundle alike: its command line names no slot.
func (v version) ukiOf(t testing.TB, stub []byte) []byte {
	t.Helper()
	// The kernel as a bzImage's setup header shows it: "HdrS" and the
	// offset of the release string.
	kernel := append(make([]byte, 0x400), v.kernel...)
	copy(kernel[0x202:], "HdrS")
	binary.LittleEndian.PutUint16(kernel[0x20e:], 0x100)
	copy(kernel[0x300:], "6.1.0-test #1\x00")
	img, err := uki.Build(uki.Input{Stub: stub, Linux: kernel, Initrd: v.initrd, Cmdline: v.options, OSRel: uki.OSRelease(v.name)})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func (v version) ukiEntry(slot string, tries int, img []byte) disk.Entry {
	e := v.entry(slot, tries)
	e.UKI = func(string) ([]byte, error) { return img, nil }
	return e
}

// TestApplyUKI: a host running a UKI from slot a, with an older version's
// UKI left for slot b, takes a bundle carrying the new version's UKI: the
// UKI booting slot b is retired, the running one kept, the new one lands
// in EFI/Linux with its boot counter, byte for byte the bundle's (and
// raw-efi's), with no kernel directory or entry file; slot b is what
// raw-efi writes there. Applying it again replaces the UKI booting slot b
// and keeps the running one.
func TestApplyUKI(t *testing.T) {
	stub, err := os.ReadFile(sdbootdeb.Path(t, sdbootdeb.Stub))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	old, next, stale := buildVersion(t, dir, oldVersion), buildVersion(t, dir, newVersion), buildVersion(t, dir, "0.9.0")
	oldUKI, nextUKI, staleUKI := old.ukiOf(t, stub), next.ukiOf(t, stub), stale.ukiOf(t, stub)
	img := filepath.Join(dir, "old.img")
	l := writeRaw(t, img, []disk.Entry{old.ukiEntry("a", 0, oldUKI), stale.ukiEntry("b", 0, staleUKI)}, old.root, stale.root)
	esp := filepath.Join(dir, "esp")
	for _, name := range []string{"loader/loader.conf", "EFI/BOOT/BOOTX64.EFI", "EFI/Linux/bulkhead-1.0.0.efi", "EFI/Linux/bulkhead-0.9.0.efi"} {
		b, err := disk.ReadESPFile(img, name)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(esp, name), b)
	}
	pb, _ := l.Partition("root-b")
	pa, _ := l.Partition("root-a")
	data, _ := l.Partition("data")
	slot := filepath.Join(dir, "root-b")
	writeFile(t, slot, readRange(t, img, pb.Offset, pb.Size))
	key := newKey(t)
	h := apply.Host{Name: "test", Arch: "amd64", Version: oldVersion, Entry: "bulkhead-1.0.0.efi", RootGUID: pa.GUID, DataGUID: data.GUID, Keys: hostKeys(t, key)}

	in := next.input()
	in.UKI = nextUKI
	bundle := filepath.Join(dir, "next.bundle")
	m, err := bundler.Write(t.Context(), bundle, in, key)
	if err != nil {
		t.Fatal(err)
	}
	if !m.UKI() || len(m.Payloads) != 2 || m.Payloads[1].Name != update.PayloadUKI {
		t.Fatalf("bundle payloads %+v, want root and uki", m.Payloads)
	}
	apply1 := func() (*apply.Result, error) {
		s, size, err := apply.OpenSlot(slot)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		return apply.Apply(t.Context(), apply.File(bundle), h, apply.Target{Slot: s, SlotSize: size, SlotGUID: pb.GUID, ESP: esp}, apply.WithClock(clock))
	}
	res, err := apply1()
	if err != nil {
		t.Fatal(err)
	}
	if res.Entry != "EFI/Linux/bulkhead-1.1.0+3.efi" {
		t.Fatalf("entry %s", res.Entry)
	}
	var files []string
	filepath.WalkDir(esp, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(esp, p)
			files = append(files, rel)
		}
		return nil
	})
	want := []string{"EFI/BOOT/BOOTX64.EFI", "EFI/Linux/bulkhead-1.0.0.efi", "EFI/Linux/bulkhead-1.1.0+3.efi", "loader/loader.conf"}
	if !slices.Equal(files, want) {
		t.Errorf("ESP files %v, want %v", files, want)
	}
	if !bytes.Equal(readFile(t, filepath.Join(esp, res.Entry)), nextUKI) {
		t.Error("the installed UKI is not the bundle's")
	}
	wantImg := filepath.Join(dir, "want.img")
	wl := writeRaw(t, wantImg, []disk.Entry{old.ukiEntry("a", 0, oldUKI), next.ukiEntry("b", 3, nextUKI)}, old.root, next.root)
	wb, _ := wl.Partition("root-b")
	if !bytes.Equal(readFile(t, slot), readRange(t, wantImg, wb.Offset, wb.Size)) {
		t.Error("slot b differs from raw-efi's root-b")
	}
	if b, err := disk.ReadESPFile(wantImg, "EFI/Linux/bulkhead-1.1.0+3.efi"); err != nil || !bytes.Equal(b, nextUKI) {
		t.Errorf("raw-efi's UKI of the version is not the bundle's: %v", err)
	}
	veritysetupVerify(t, slot, next.img)

	// The version's UKI boots slot b, so applying it again replaces it, as
	// with an entry file; the one booting slot a stays.
	if res, err := apply1(); err != nil || res.Entry != "EFI/Linux/bulkhead-1.1.0+3.efi" {
		t.Fatalf("applying again: %+v, %v", res, err)
	}
	if !bytes.Equal(readFile(t, filepath.Join(esp, "EFI/Linux/bulkhead-1.0.0.efi")), oldUKI) {
		t.Error("the running UKI changed")
	}
}
