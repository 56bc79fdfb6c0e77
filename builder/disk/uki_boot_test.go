package disk

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/builder/uki"
	"github.com/bulkhead-dev/bulkhead/internal/qemu"
	"github.com/bulkhead-dev/bulkhead/internal/sdbootdeb"
	"github.com/bulkhead-dev/bulkhead/internal/test/qemutest"
	"github.com/bulkhead-dev/bulkhead/internal/test/testkernel"
)

// ukiEntry is an entry whose version is a UKI built from Debian's stub,
// kernel and the test guest's initrd.
func ukiEntry(t *testing.T, version, slot string, tries int, options string) Entry {
	t.Helper()
	stub, err := os.ReadFile(sdbootdeb.Path(t, sdbootdeb.Stub))
	if err != nil {
		t.Fatal(err)
	}
	kernel, err := os.ReadFile(testkernel.Path(t))
	if err != nil {
		t.Fatal(err)
	}
	initrd, err := os.ReadFile(qemutest.Initrd(t, testkernel.ModulesDir(t)))
	if err != nil {
		t.Fatal(err)
	}
	build := func(cmdline string) ([]byte, error) {
		return uki.Build(uki.Input{Stub: stub, Linux: kernel, Initrd: initrd, Cmdline: cmdline, OSRel: uki.OSRelease(version)})
	}
	return Entry{Version: version, Kernel: FromBytes(kernel), Initrd: FromBytes(initrd), Slot: slot, Tries: tries,
		Options: options, UKI: build}
}

// TestBootRawUKIFallsBack boots a raw image of two UKIs in EFI/Linux under
// OVMF and systemd-boot: the newer one (counted, +3) panics, systemd-boot
// tries it three times, renaming the file each time, then boots the older,
// blessed one, whose guest sees the command line baked into its UKI.
func TestBootRawUKIFallsBack(t *testing.T) {
	img := filepath.Join(t.TempDir(), "disk.img")
	_, err := WriteRaw(context.Background(), img, RawInput{
		Bootloader: FromFile(systemdBoot(t)),
		Entries: []Entry{
			ukiEntry(t, "1", "a", 0, "console=ttyS0 bulkhead.guest=poweroff bulkhead.test=uki-one"), // not quiet: the kernel prints its command line
			ukiEntry(t, "2", "b", 3, qemutest.Cmdline+" bulkhead.guest=panic panic=-1"),
		},
		Seed: []byte(t.Name()),
	})
	if err != nil {
		t.Fatal(err)
	}
	if names, err := ReadUKIs(img); err != nil || strings.Join(names, " ") != "bulkhead-1.efi bulkhead-2+3.efi" {
		t.Fatalf("UKIs written: %v, %v", names, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	vm := boot(t, ctx, qemu.Config{Disk: img, AllowReboot: true, Timeout: 7 * time.Minute})
	for i := range 3 {
		if _, err := vm.WaitFor(ctx, "guest exiting", 0); err != nil {
			t.Fatalf("try %d of UKI 2: %v", i+1, err)
		}
	}
	if _, err := vm.WaitFor(ctx, "guest powering off", 0); err != nil {
		t.Fatal(err)
	}
	if res, err := vm.Wait(); err != nil || res.Reason != qemu.Poweroff {
		t.Fatalf("vm ended with %+v, %v", res, err)
	}
	if n := strings.Count(vm.Console(), "guest exiting"); n != 3 {
		t.Errorf("UKI 2 was tried %d times, want 3", n)
	}
	// A UKI carries its command line as built: no slot (root=) is added.
	if !strings.Contains(vm.Console(), "Kernel command line: console=ttyS0 bulkhead.guest=poweroff bulkhead.test=uki-one\r\n") && !strings.Contains(vm.Console(), "Kernel command line: console=ttyS0 bulkhead.guest=poweroff bulkhead.test=uki-one\n") {
		t.Errorf("the guest's command line is not the one in UKI 1:\n%s", vm.Tail(40))
	}
	names, err := ReadUKIs(img)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(names, " "); got != "bulkhead-1.efi bulkhead-2+0-3.efi" {
		t.Errorf("UKIs after fallback: %s, want bulkhead-1.efi bulkhead-2+0-3.efi", got)
	}
}

// TestReadBootEntryUKI: a disk whose entries are unified kernel images
// reads back the kernel, initrd and command line of the first UKI (what
// bulkhead scan of the disk reads).
func TestReadBootEntryUKI(t *testing.T) {
	in := fakeInput(t)
	e := ukiEntry(t, "1.0.0", "a", 0, "console=ttyS0 bulkhead.verity=x")
	in.Entries = []Entry{e}
	raw := filepath.Join(t.TempDir(), "disk.img")
	if _, err := WriteRaw(context.Background(), raw, in); err != nil {
		t.Fatal(err)
	}
	be, err := ReadBootEntry(raw)
	if err != nil {
		t.Fatal(err)
	}
	if be.Name != "bulkhead-1.0.0.efi" || !strings.HasPrefix(be.Options, "console=ttyS0 ") ||
		!bytes.Equal(be.Kernel, e.Kernel.Data) || !bytes.Equal(be.Initrd, e.Initrd.Data) {
		t.Errorf("entry %s, options %q, kernel %d bytes (want %d), initrd %d bytes (want %d)",
			be.Name, be.Options, len(be.Kernel), len(e.Kernel.Data), len(be.Initrd), len(e.Initrd.Data))
	}
}
