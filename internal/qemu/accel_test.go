package qemu

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/internal/test/testkernel"
)

// TestProbeImageMatchesSource assembles testdata/probe.S with GNU as and
// compares it with the image the probe boots.
func TestProbeImageMatchesSource(t *testing.T) {
	dir := t.TempDir()
	obj, bin := filepath.Join(dir, "probe.o"), filepath.Join(dir, "probe.bin")
	for _, c := range [][]string{
		{"as", "--32", "-o", obj, "testdata/probe.S"},
		{"objcopy", "-O", "binary", "-j", ".text", obj, bin},
	} {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", c[0], err, out)
		}
	}
	want, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(probeImage(), want) {
		t.Fatal("probeImage differs from testdata/probe.S assembled: update probeCode/probeReset")
	}
}

// TestProbeGuestUnderTCG: software emulation runs the probe guest to long
// mode, so the probe's success text is reachable at all.
func TestProbeGuestUnderTCG(t *testing.T) {
	bios := filepath.Join(t.TempDir(), "probe.bin")
	if err := os.WriteFile(bios, probeImage(), 0o600); err != nil {
		t.Fatal(err)
	}
	args := append(probeArgs(bios)[:len(probeArgs(bios))-4], accelArgs(AccelTCG)...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, DefaultBinary, args...)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	got, ok := readUntil(pr, probeOK)
	cmd.Process.Kill()
	cmd.Wait()
	if !ok {
		t.Fatalf("probe guest under tcg printed %q, want %q", got, probeOK)
	}
}

// TestProbeAgreesWithKernel checks the probe's decision on this machine
// against a real kernel booted under KVM without the probe: where the probe
// says KVM works, the kernel prints its banner; where it says KVM cannot
// run a guest, the kernel prints nothing (or qemu fails) in the same time
// it takes under TCG to reach init.
func TestProbeAgreesWithKernel(t *testing.T) {
	why := probeKVM(context.Background(), DefaultBinary)
	t.Logf("probe: %q", why)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	args := append([]string{"-nodefaults", "-no-user-config", "-machine", "q35", "-m", "512",
		"-display", "none", "-serial", "stdio", "-no-reboot",
		"-kernel", testkernel.Path(t), "-append", "console=ttyS0 panic=-1"}, accelArgs(AccelKVM)...)
	cmd := exec.CommandContext(ctx, DefaultBinary, args...)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	out, banner := readUntil(pr, "Linux version")
	cmd.Process.Kill()
	cmd.Wait()
	switch {
	case why == "" && !banner:
		t.Fatalf("the probe says KVM runs a guest, but the kernel printed no banner in 15s:\n%s", out)
	case why != "" && banner:
		t.Fatalf("the probe says KVM cannot run a guest (%s), but the kernel booted under KVM:\n%s", why, out)
	}
}

// fakeQemu writes a script that stands in for qemu and exits as the given
// shell body says.
func fakeQemu(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "qemu-system-x86_64")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// msrAbort is what qemu prints when a nested KVM refuses an MSR at reset.
const msrAbort = `echo 'error: failed to set MSR 0x10a to 0x69' >&2
echo 'qemu-system-x86_64: ../../target/i386/kvm/kvm.c:3295: kvm_buf_set_msrs: Assertion ` + "`ret == cpu->kvm_msr_buf->nmsrs'" + ` failed.' >&2
kill -ABRT $$`

func TestProbeQemuAborts(t *testing.T) {
	why := runProbe(context.Background(), fakeQemu(t, msrAbort), os.DevNull)
	if !strings.Contains(why, "qemu: error: failed to set MSR 0x10a to 0x69") || strings.Contains(why, "Assertion") {
		t.Fatalf("probe reason %q: want qemu's error without the assertion", why)
	}
}

func TestProbeGuestHangs(t *testing.T) {
	// Prints the real-mode mark, then nothing: what this machine's nested
	// KVM does.
	start := time.Now()
	why := runProbe(context.Background(), fakeQemu(t, "printf R; exec sleep 60"), os.DevNull)
	if want := "never reached protected mode within"; !strings.Contains(why, want) {
		t.Fatalf("probe reason %q, want %q", why, want)
	}
	if d := time.Since(start); d > ProbeTimeout+5*time.Second {
		t.Fatalf("probe took %s, bound is %s", d, ProbeTimeout)
	}
}

func TestProbeSucceeds(t *testing.T) {
	if why := runProbe(context.Background(), fakeQemu(t, `printf 'RPL\n'; exec sleep 60`), os.DevNull); why != "" {
		t.Fatalf("probe reason %q, want success", why)
	}
}

func TestProbeNoDevice(t *testing.T) {
	why := runProbe(context.Background(), fakeQemu(t, "exit 0"), "/nonexistent/kvm")
	if !strings.Contains(why, "/nonexistent/kvm") {
		t.Fatalf("probe reason %q, want the device named", why)
	}
}

func TestResolveAccel(t *testing.T) {
	ctx := context.Background()
	bad := fakeQemu(t, msrAbort)
	// Seed the cache as a machine whose KVM aborts would.
	probes.Lock()
	if probes.why == nil {
		probes.why = map[string]string{}
	}
	probes.why[bad] = runProbe(ctx, bad, os.DevNull)
	probes.Unlock()

	a, err := ResolveAccel(ctx, bad, AccelAuto)
	if err != nil || a.Name != AccelTCG || !strings.Contains(a.Why, "failed to set MSR") {
		t.Errorf("auto on a failing KVM: %+v, %v; want tcg saying why", a, err)
	}
	_, err = ResolveAccel(ctx, bad, AccelKVM)
	if !errors.Is(err, ErrKVMUnusable) || !strings.Contains(err.Error(), "failed to set MSR 0x10a") ||
		strings.Contains(err.Error(), "Assertion") {
		t.Errorf("forced kvm on a failing KVM: %v", err)
	}
	if a, err := ResolveAccel(ctx, bad, AccelTCG); err != nil || a != (Accel{Name: AccelTCG}) {
		t.Errorf("forced tcg: %+v, %v", a, err)
	}
	t.Setenv(EnvAccel, "tcg")
	if a, err := ResolveAccel(ctx, bad, ""); err != nil || a != (Accel{Name: AccelTCG}) {
		t.Errorf("%s=tcg: %+v, %v", EnvAccel, a, err)
	}
	if _, err := ResolveAccel(ctx, bad, "hvf"); err == nil || !strings.Contains(err.Error(), "want auto, kvm or tcg") {
		t.Errorf("unknown accelerator: %v", err)
	}
}
