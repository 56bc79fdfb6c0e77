package qemu_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"

	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/internal/qemu"
	"github.com/bulkhead-dev/bulkhead/internal/test/qemutest"
	"github.com/bulkhead-dev/bulkhead/internal/test/testkernel"
)

// bootTimeout bounds every boot; a healthy one takes a few seconds of TCG.
const bootTimeout = 2 * time.Minute

// syncBuffer is a bytes.Buffer safe for the console copy and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// boot starts the test guest with the given command line additions and
// modules, and kills it when the test ends.
func boot(t *testing.T, cfg qemu.Config, cmdline string, modules ...string) *qemu.VM {
	t.Helper()
	cfg.Kernel = testkernel.Path(t)
	modDir := ""
	if len(modules) > 0 {
		modDir = testkernel.ModulesDir(t)
	}
	cfg.Initrd = qemutest.Initrd(t, modDir, modules...)
	cfg.Cmdline = qemutest.Cmdline + " " + cmdline
	if cfg.Timeout == 0 {
		cfg.Timeout = bootTimeout
	}
	return qemutest.Start(context.Background(), t, cfg)
}

func TestGuestPoweroff(t *testing.T) {
	var copyOut syncBuffer
	vm := boot(t, qemu.Config{Console: &copyOut}, "bulkhead.guest=poweroff")
	ctx := context.Background()
	if _, err := vm.WaitFor(ctx, "hello from guest", bootTimeout); err != nil {
		t.Fatal(err)
	}
	if _, err := vm.WaitFor(ctx, "firmware: bios", bootTimeout); err != nil {
		t.Fatal(err)
	}
	res := qemutest.WantResult(t, vm, qemu.Poweroff)
	if res.ExitCode != 0 || !strings.Contains(res.Detail, "guest-shutdown") {
		t.Errorf("result %+v, want exit 0 after a guest-shutdown", res)
	}
	if !strings.Contains(copyOut.String(), "guest powering off") || copyOut.String() != vm.Console() {
		t.Errorf("console copy differs from the console:\n%q\n%q", copyOut.String(), vm.Console())
	}
	// The VM is gone: a wait now fails at once, saying so.
	_, err := vm.WaitFor(ctx, "never printed", time.Minute)
	if !errors.Is(err, qemu.ErrStopped) || !strings.Contains(err.Error(), "vm stopped (poweroff)") {
		t.Errorf("WaitFor after poweroff: %v", err)
	}
	if err := vm.Powerdown(); !errors.Is(err, qemu.ErrStopped) {
		t.Errorf("Powerdown after poweroff: %v, want ErrStopped", err)
	}
}

func TestGuestPanic(t *testing.T) {
	vm := boot(t, qemu.Config{}, "bulkhead.guest=panic")
	if _, err := vm.WaitFor(context.Background(), "guest exiting", bootTimeout); err != nil {
		t.Fatal(err)
	}
	res := qemutest.WantResult(t, vm, qemu.Panic)
	if !strings.Contains(res.Detail, "Attempted to kill init") {
		t.Errorf("panic detail %q does not name the panic", res.Detail)
	}
}

// TestGuestPanicPvpanic lets the guest's pvpanic driver report the panic:
// qemu then exits by itself (-action panic=exit-failure).
func TestGuestPanicPvpanic(t *testing.T) {
	vm := boot(t, qemu.Config{}, "bulkhead.guest=panic", qemutest.PanicModules...)
	res := qemutest.WantResult(t, vm, qemu.Panic)
	if res.ExitCode != 1 {
		t.Errorf("result %+v, want qemu's exit-failure (1)", res)
	}
}

func TestGuestReboot(t *testing.T) {
	vm := boot(t, qemu.Config{}, "bulkhead.guest=reboot")
	res := qemutest.WantResult(t, vm, qemu.Reboot)
	if !strings.Contains(res.Detail, "guest-reset") {
		t.Errorf("result %+v, want a guest-reset", res)
	}
}

// TestPowerdownAndForward serves HTTP from the guest through a forwarded
// port, then presses the power button, which the guest answers by powering
// off.
func TestPowerdownAndForward(t *testing.T) {
	port, err := qemu.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cfg := qemu.Config{Forwards: []qemu.Forward{{HostPort: port, GuestPort: 8080}}}
	modules := append(append([]string{}, qemutest.NetModules...), qemutest.PowerButtonModules...)
	vm := boot(t, cfg, "bulkhead.listen=8080", modules...)
	ctx := context.Background()
	for _, s := range []string{"hello from guest", "listening on 8080", "guest waiting"} {
		if _, err := vm.WaitFor(ctx, s, bootTimeout); err != nil {
			t.Fatal(err)
		}
	}
	body := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/", port))
	if body != "hello over http\n" {
		t.Errorf("GET through the forward: %q", body)
	}
	if err := vm.Powerdown(); err != nil {
		t.Fatal(err)
	}
	if _, err := vm.WaitFor(ctx, "power button pressed", bootTimeout); err != nil {
		t.Fatal(err)
	}
	qemutest.WantResult(t, vm, qemu.Poweroff)
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return string(b)
}

// TestWaitForTimeoutAndKill checks the error of a wait that times out, the
// ordering of waits, and Kill.
func TestWaitForTimeoutAndKill(t *testing.T) {
	vm := boot(t, qemu.Config{}, "")
	ctx := context.Background()
	if _, err := vm.WaitFor(ctx, "guest waiting", bootTimeout); err != nil {
		t.Fatal(err)
	}
	// "hello from guest" came before the last match: it is not found again.
	_, err := vm.WaitFor(ctx, "hello from guest", 500*time.Millisecond)
	if !errors.Is(err, qemu.ErrTimeout) {
		t.Fatalf("WaitFor of an earlier line: %v, want a timeout", err)
	}
	for _, want := range []string{`timed out after 500ms waiting for "hello from guest"; console tail:`, "guest waiting"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	vm.Kill()
	qemutest.WantResult(t, vm, qemu.Killed)
}

func TestTimeout(t *testing.T) {
	vm := boot(t, qemu.Config{Timeout: time.Second}, "")
	res := qemutest.WantResult(t, vm, qemu.Timeout)
	if res.ExitCode != -1 {
		t.Errorf("result %+v: qemu should have been killed", res)
	}
}

func TestContextCancelKills(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cfg := qemu.Config{
		Kernel:  testkernel.Path(t),
		Initrd:  qemutest.Initrd(t, ""),
		Cmdline: qemutest.Cmdline,
	}
	vm, err := qemu.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	qemutest.WantResult(t, vm, qemu.Killed)
}

func TestQemuFailure(t *testing.T) {
	_, err := qemu.Start(context.Background(), qemu.Config{Kernel: "/nonexistent/kernel"})
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/kernel") {
		t.Fatalf("Start with a missing kernel: %v, want qemu's complaint", err)
	}
}

// TestUEFIBoot boots the kernel through OVMF (its EFI stub) on a fresh copy
// of the variable store.
func TestUEFIBoot(t *testing.T) {
	vm := boot(t, qemu.Config{UEFI: true}, "bulkhead.guest=poweroff")
	if _, err := vm.WaitFor(context.Background(), "hello from guest", bootTimeout); err != nil {
		t.Fatal(err)
	}
	if _, err := vm.WaitFor(context.Background(), "firmware: efi", bootTimeout); err != nil {
		t.Fatal(err)
	}
	qemutest.WantResult(t, vm, qemu.Poweroff)
}

// TestAllowReboot lets the guest reboot: it boots again, which successive
// waits see in order.
func TestAllowReboot(t *testing.T) {
	vm := boot(t, qemu.Config{AllowReboot: true}, "bulkhead.guest=reboot")
	ctx := context.Background()
	for _, s := range []string{"hello from guest", "guest rebooting", "hello from guest"} {
		if _, err := vm.WaitFor(ctx, s, bootTimeout); err != nil {
			t.Fatal(err)
		}
	}
	vm.Kill()
	qemutest.WantResult(t, vm, qemu.Killed)
}

// TestForcedTCG boots under software emulation whatever the machine has;
// qemu itself confirms KVM is off.
func TestForcedTCG(t *testing.T) {
	vm := boot(t, qemu.Config{Accel: qemu.AccelTCG}, "bulkhead.guest=wait")
	if _, err := vm.WaitFor(context.Background(), "hello from guest", bootTimeout); err != nil {
		t.Fatal(err)
	}
	on, err := vm.KVMEnabled()
	if err != nil || on || vm.Accel().Name != qemu.AccelTCG {
		t.Fatalf("KVMEnabled = %v, %v; Accel %+v: want tcg", on, err, vm.Accel())
	}
}

// TestForcedKVM: where the probe finds a KVM that runs guests, a forced kvm
// boots under it; where not, Start refuses with the probe's reason instead
// of a qemu that aborts or a guest that hangs.
func TestForcedKVM(t *testing.T) {
	auto, err := qemu.ResolveAccel(context.Background(), qemu.DefaultBinary, qemu.AccelAuto)
	if err != nil {
		t.Fatal(err)
	}
	if auto.Name == qemu.AccelTCG {
		cfg := qemu.Config{Accel: qemu.AccelKVM, Kernel: testkernel.Path(t), Cmdline: qemutest.Cmdline}
		_, err := qemu.Start(context.Background(), cfg)
		if !errors.Is(err, qemu.ErrKVMUnusable) || strings.Contains(err.Error(), "Assertion") {
			t.Fatalf("forced kvm where the probe said %q: %v", auto.Why, err)
		}
		t.Logf("refused as expected: %v", err)
		return
	}
	vm := boot(t, qemu.Config{Accel: qemu.AccelKVM}, "bulkhead.guest=wait")
	if _, err := vm.WaitFor(context.Background(), "hello from guest", bootTimeout); err != nil {
		t.Fatal(err)
	}
	if on, err := vm.KVMEnabled(); err != nil || !on {
		t.Fatalf("KVMEnabled = %v, %v under a forced kvm", on, err)
	}
}

// TestSnapshotLeavesDiskAlone: the guest writes to its disk; with
// Snapshot the image's bytes stay as they were, without it they change
// (so the guest really wrote).
func TestSnapshotLeavesDiskAlone(t *testing.T) {
	for _, snapshot := range []bool{true, false} {
		disk := filepath.Join(t.TempDir(), "disk.img")
		if err := os.WriteFile(disk, make([]byte, 1<<20), 0o644); err != nil {
			t.Fatal(err)
		}
		before := fileDigest(t, disk)
		var console syncBuffer
		vm := boot(t, qemu.Config{Disk: disk, Snapshot: snapshot, Console: &console},
			"bulkhead.write=/dev/vda bulkhead.guest=poweroff", qemutest.DiskModules...)
		res, err := vm.Wait()
		if err != nil || res.Reason != qemu.Poweroff {
			t.Fatalf("snapshot %v: %v %v\n%s", snapshot, res, err, console.String())
		}
		if !strings.Contains(console.String(), "wrote /dev/vda") {
			t.Fatalf("snapshot %v: the guest did not write:\n%s", snapshot, console.String())
		}
		if changed := fileDigest(t, disk) != before; changed == snapshot {
			t.Errorf("snapshot %v: disk changed %v", snapshot, changed)
		}
	}
}

func fileDigest(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// TestPortInUse: a host port another program holds is named before qemu
// starts.
func TestPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	_, err = qemu.Start(context.Background(), qemu.Config{Kernel: "/nonexistent", Forwards: []qemu.Forward{{HostPort: port, GuestPort: 80}}})
	if !errors.Is(err, qemu.ErrPortInUse) || !strings.Contains(err.Error(), fmt.Sprintf("port 127.0.0.1:%d/tcp already in use", port)) {
		t.Errorf("Start with a taken port: %v", err)
	}
}
