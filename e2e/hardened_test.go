package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/internal/qemu"
)

// TestHardenedHostServes builds examples/hardened.yml with the CLI (the
// hardened kernel image comes from the store: `make images` or `make
// kernel`), boots it, asks its web service through the port forward and
// powers it off. The hardened kernel has no modules: the init must load
// none and go on.
func TestHardenedHostServes(t *testing.T) {
	const spec = "../examples/hardened.yml"
	out := t.TempDir()
	cmd := exec.Command(bulkhead, "build", "-o", out, spec)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("bulkhead build %s: %v\n%s\n(the component images come from `make images`)", spec, err, stderr.String())
	}
	if strings.Contains(stderr.String(), "warning: kernel") {
		t.Errorf("the build warned about the kernel:\n%s", stderr.String())
	}
	report, err := os.ReadFile(filepath.Join(out, "hardened-kernel-check.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(report), "(passes: min 95%)") {
		t.Errorf("hardened-kernel-check.txt does not pass:\n%s", report)
	}

	prefix := filepath.Join(out, "hardened")
	vm, ports := boot(t, prefix, 8080)
	for _, s := range []string{
		"bulkhead-init: stage0: loaded 0 modules",
		"bulkhead-init: started",
		"bulkhead-init: modules: loaded 0",
		"containerd ready",
		"bulkhead-init: onboot oneshot exited 0",
		"bulkhead-init: service hello started",
	} {
		waitFor(t, vm, s, 2*time.Minute)
	}
	if got, want := get(t, ports[0], time.Minute), "hello from hardened (hello dev)\n"; got != want {
		t.Fatalf("service answered %q, want %q", got, want)
	}
	cmdline, err := os.ReadFile(prefix + "-cmdline")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(vm.Console(), "Command line: "+strings.TrimSpace(string(cmdline))) {
		t.Errorf("the kernel did not boot with the built command line")
	}
	if err := vm.Powerdown(); err != nil {
		t.Fatal(err)
	}
	if _, err := vm.WaitFor(context.Background(), "bulkhead-init: power off", 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	if res, err := vm.Wait(); err != nil || res.Reason != qemu.Poweroff {
		t.Fatalf("guest ended with %+v, %v; want poweroff", res, err)
	}
}

// TestHardenedSealedData: examples/hardened.yml as a UKI with
// disk.encrypt_data: tpm boots through OVMF with a software TPM: the
// hardened kernel has dm-crypt, xts, AES-NI and the TPM drivers built in
// (no modules), so the host seals, formats and opens /var, and the
// service answers.
func TestHardenedSealedData(t *testing.T) {
	spec, err := os.ReadFile("../examples/hardened.yml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	specPath := filepath.Join(dir, "hardened.yml")
	if err := os.WriteFile(specPath, append(spec, []byte("boot:\n  uki: true\ndisk:\n  encrypt_data: tpm\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	keys := sbKeys(t)
	out, err := exec.Command(bulkhead, "build", "--format", "raw-efi", "--pcr-key", filepath.Join(keys, "db.key"), "-o", dir, specPath).CombinedOutput()
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	vm, port := bootUEFI(t, qemu.Config{Disk: copyImage(t, filepath.Join(dir, "hardened.img")), ExtraArgs: swtpm(t)})
	waitFor(t, vm, "data: created a LUKS2 volume on", 4*time.Minute)
	waitFor(t, vm, "tpm: extended PCR 11", time.Minute)
	waitFor(t, vm, "data: mounted /dev/dm-", time.Minute)
	if got, want := get(t, port, 3*time.Minute), "hello from hardened (hello dev)\n"; got != want {
		t.Fatalf("service answered %q, want %q", got, want)
	}
	powerOff(t, vm)
}
