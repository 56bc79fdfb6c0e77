package disk

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/internal/qemu"
	"github.com/bulkhead-dev/bulkhead/internal/sdbootdeb"
	"github.com/bulkhead-dev/bulkhead/internal/test/qemutest"
	"github.com/bulkhead-dev/bulkhead/internal/test/testkernel"
)

func TestMain(m *testing.M) {
	code := m.Run()
	sdbootdeb.Cleanup()
	os.Exit(code)
}

// systemdBoot returns Debian's systemd-bootx64.efi.
func systemdBoot(t *testing.T) string { return sdbootdeb.Path(t, sdbootdeb.Bootloader) }

// guest is Debian's kernel and the tiny test guest's initrd.
func guest(t *testing.T) (kernel, initrd Source) {
	t.Helper()
	return FromFile(testkernel.Path(t)), FromFile(qemutest.Initrd(t, testkernel.ModulesDir(t)))
}

// boot starts img under OVMF and returns the VM.
func boot(t *testing.T, ctx context.Context, cfg qemu.Config) *qemu.VM {
	t.Helper()
	cfg.UEFI = true
	if testing.Verbose() {
		cfg.Console = os.Stdout
	}
	vm, err := qemu.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { vm.Kill(); vm.Wait() })
	return vm
}

// TestBootRawCountsTries boots a raw image under OVMF and systemd-boot: the
// guest comes up, and systemd-boot has renamed the entry from +3 to +2-1.
func TestBootRawCountsTries(t *testing.T) {
	kernel, initrd := guest(t)
	img := filepath.Join(t.TempDir(), "disk.img")
	_, err := WriteRaw(context.Background(), img, RawInput{
		Bootloader: FromFile(systemdBoot(t)),
		Entries: []Entry{{Version: "1.0.0", Kernel: kernel, Initrd: initrd, Slot: "a", Tries: 3,
			Options: qemutest.Cmdline + " bulkhead.guest=poweroff"}},
		Seed: []byte(t.Name()),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	vm := boot(t, ctx, qemu.Config{Disk: img, Timeout: 3 * time.Minute})
	if _, err := vm.WaitFor(ctx, "hello from guest", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := vm.WaitFor(ctx, "firmware: efi", 0); err != nil {
		t.Fatal(err)
	}
	if res, err := vm.Wait(); err != nil || res.Reason != qemu.Poweroff {
		t.Fatalf("vm ended with %+v, %v; console:\n%s", res, err, vm.Tail(30))
	}
	names, err := ReadEntries(img)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(names, " "); got != "bulkhead-1.0.0+2-1.conf" {
		t.Errorf("entries after one boot: %s, want bulkhead-1.0.0+2-1.conf", got)
	}
}

// TestBootRawFallsBack boots a raw image whose newer entry panics: after
// its three tries systemd-boot boots the older, blessed entry.
func TestBootRawFallsBack(t *testing.T) {
	kernel, initrd := guest(t)
	img := filepath.Join(t.TempDir(), "disk.img")
	_, err := WriteRaw(context.Background(), img, RawInput{
		Bootloader: FromFile(systemdBoot(t)),
		Entries: []Entry{
			{Version: "1", Kernel: kernel, Initrd: initrd, Slot: "a", Options: qemutest.Cmdline + " bulkhead.guest=poweroff"},
			{Version: "2", Kernel: kernel, Initrd: initrd, Slot: "b", Tries: 3, Options: qemutest.Cmdline + " bulkhead.guest=panic panic=-1"},
		},
		Seed: []byte(t.Name()),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	vm := boot(t, ctx, qemu.Config{Disk: img, AllowReboot: true, Timeout: 7 * time.Minute})
	for i := range 3 {
		if _, err := vm.WaitFor(ctx, "guest exiting", 0); err != nil {
			t.Fatalf("try %d of entry 2: %v", i+1, err)
		}
	}
	if _, err := vm.WaitFor(ctx, "guest powering off", 0); err != nil {
		t.Fatal(err)
	}
	if res, err := vm.Wait(); err != nil || res.Reason != qemu.Poweroff {
		t.Fatalf("vm ended with %+v, %v", res, err)
	}
	if n := strings.Count(vm.Console(), "guest exiting"); n != 3 {
		t.Errorf("entry 2 was tried %d times, want 3", n)
	}
	names, err := ReadEntries(img)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(names, " "); got != "bulkhead-1.conf bulkhead-2+0-3.conf" {
		t.Errorf("entries after fallback: %s, want bulkhead-1.conf bulkhead-2+0-3.conf", got)
	}
}

// TestBootISO boots the iso-efi image as a CD under OVMF.
func TestBootISO(t *testing.T) {
	kernel, initrd := guest(t)
	iso := filepath.Join(t.TempDir(), "host.iso")
	err := WriteISO(context.Background(), iso, ISOInput{
		Bootloader: FromFile(systemdBoot(t)),
		Entry:      Entry{Version: "1.0.0", Kernel: kernel, Initrd: initrd, Options: qemutest.Cmdline + " bulkhead.guest=poweroff"},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	vm := boot(t, ctx, qemu.Config{ISO: iso, Timeout: 3 * time.Minute})
	if _, err := vm.WaitFor(ctx, "hello from guest", 0); err != nil {
		t.Fatal(err)
	}
	if res, err := vm.Wait(); err != nil || res.Reason != qemu.Poweroff {
		t.Fatalf("vm ended with %+v, %v", res, err)
	}
}
