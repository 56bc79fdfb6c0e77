package disk

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/fat32"
	"github.com/diskfs/go-diskfs/filesystem/iso9660"
)

func fakeISOInput() ISOInput {
	return ISOInput{
		Bootloader: FromBytes(pseudo(100_000, "systemd-boot")),
		Entry:      Entry{Version: "1.0.0", Kernel: FromBytes(pseudo(5*MiB, "kernel")), Initrd: FromBytes(pseudo(2*MiB, "initrd")), Options: "console=ttyS0", Tries: 3, Slot: "b"},
		VolumeID:   "BULKHEAD_TEST",
	}
}

func TestWriteISO(t *testing.T) {
	dir := t.TempDir()
	in := fakeISOInput()
	var images [][]byte
	for i, name := range []string{"one.iso", "two.iso"} {
		if i > 0 {
			time.Sleep(2100 * time.Millisecond) // FAT times have 2 s steps
		}
		if err := WriteISO(context.Background(), filepath.Join(dir, name), in); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		images = append(images, b)
	}
	if !bytes.Equal(images[0], images[1]) {
		t.Error("two writes of the same input differ")
	}
	iso := images[0]
	pvd := iso[16*isoBlock:]
	if pvd[0] != 1 || string(pvd[1:6]) != "CD001" || string(bytes.TrimRight(pvd[40:72], " ")) != "BULKHEAD_TEST" {
		t.Errorf("no primary volume descriptor with the volume id: %q", pvd[:72])
	}
	if bytes.IndexByte(pvd[8:72], 0) >= 0 {
		t.Errorf("text fields padded with NULs: %q", pvd[8:72])
	}
	if br := iso[17*isoBlock:]; br[0] != 0 || string(br[7:30]) != "EL TORITO SPECIFICATION" {
		t.Errorf("no El Torito boot record: %q", br[:40])
	}

	// The boot image is a FAT32 file system with the entry, no counter.
	f, err := os.Open(filepath.Join(dir, "one.iso"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	isofs, err := iso9660.Read(file.New(f, true), fi.Size(), 0, isoBlock)
	if err != nil {
		t.Fatal(err)
	}
	img, err := isofs.ReadFile(isoBootImage[1:])
	if err != nil {
		t.Fatal(err)
	}
	fat, err := fat32.Read(&memDisk{b: img}, int64(len(img)), 0, SectorSize)
	if err != nil {
		t.Fatal(err)
	}
	conf, err := fat.ReadFile("loader/entries/bulkhead-1.0.0.conf")
	if err != nil {
		t.Fatal(err)
	}
	want := "title Bulkhead 1.0.0\nversion 1.0.0\nsort-key bulkhead\nlinux /bulkhead/1.0.0/linux\ninitrd /bulkhead/1.0.0/initrd\noptions console=ttyS0\n"
	if string(conf) != want {
		t.Errorf("entry:\n%s\nwant:\n%s", conf, want)
	}
	boot, err := fat.ReadFile("EFI/BOOT/BOOTX64.EFI")
	if err != nil || !bytes.Equal(boot, in.Bootloader.Data) {
		t.Errorf("BOOTX64.EFI: %d bytes, %v", len(boot), err)
	}
}

func TestInputErrors(t *testing.T) {
	ok := fakeInput(t)
	for name, mod := range map[string]func(*RawInput){
		"no bootloader":   func(in *RawInput) { in.Bootloader = Source{} },
		"no entries":      func(in *RawInput) { in.Entries = nil },
		"bad slot":        func(in *RawInput) { in.Entries[0].Slot = "c" },
		"plus in version": func(in *RawInput) { in.Entries[0].Version = "1+2" },
		"slash":           func(in *RawInput) { in.Entries[0].Version = "a/b" },
		"duplicate":       func(in *RawInput) { in.Entries[1].Version = in.Entries[0].Version },
		"root= in options": func(in *RawInput) {
			in.Entries[0].Options = "root=/dev/sda"
		},
		"no kernel":      func(in *RawInput) { in.Entries[0].Kernel = Source{} },
		"missing kernel": func(in *RawInput) { in.Entries[0].Kernel = FromFile("/nonexistent") },
		"root too large": func(in *RawInput) { in.RootSize = MiB },
		"esp too small":  func(in *RawInput) { in.ESPSize = 8 * MiB },
		"esp full":       func(in *RawInput) { in.ESPSize = 64 * MiB; in.Entries[0].Initrd = FromBytes(pseudo(70*MiB, "big")) },
		"negative tries": func(in *RawInput) { in.Entries[0].Tries = -1 },
	} {
		t.Run(name, func(t *testing.T) {
			in := ok
			in.Entries = append([]Entry(nil), ok.Entries...)
			mod(&in)
			path := filepath.Join(t.TempDir(), "disk.img")
			if _, err := WriteRaw(context.Background(), path, in); err == nil {
				t.Fatal("no error")
			} else {
				t.Log(err)
			}
			if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 0 {
				t.Errorf("failed write left files: %v", entries)
			}
		})
	}
}

// The ISO writer's scratch space is beside the output, never in $TMPDIR,
// and nothing of it is left.
func TestWriteISOScratchBesideOutput(t *testing.T) {
	t.Setenv("TMPDIR", filepath.Join(t.TempDir(), "missing"))
	dir := t.TempDir()
	if err := WriteISO(context.Background(), filepath.Join(dir, "a.iso"), fakeISOInput()); err != nil {
		t.Fatalf("with an unusable $TMPDIR: %v", err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || ents[0].Name() != "a.iso" {
		t.Errorf("output directory holds %v", ents)
	}
}
