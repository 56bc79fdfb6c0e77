// Package kernelhardened_test boots the hardened kernel that kernel/build
// built (make kernel) with the tiny test guest, no modules: everything the
// guest needs is built in.
package kernelhardened_test

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/internal/qemu"
	"github.com/bulkhead-dev/bulkhead/internal/test/qemutest"
)

// bootTimeout bounds a boot; one takes a few seconds of TCG.
const bootTimeout = 2 * time.Minute

// builtKernel returns kernel/build's output directory, failing the test
// when the kernel is not built: a build takes a quarter of an hour, so the
// test does not start one.
func builtKernel(t *testing.T) string {
	t.Helper()
	cmd := exec.Command(filepath.Join("..", "..", "kernel", "build"), "--cached")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 2 {
		t.Fatalf("the hardened kernel is not built: run `make kernel` first (about 15 minutes)\n%s", stderr.String())
	}
	if err != nil {
		t.Fatalf("kernel/build --cached: %v\n%s", err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

func boot(t *testing.T, dir, cmdline string) *qemu.VM {
	t.Helper()
	return qemutest.Start(context.Background(), t, qemu.Config{
		Kernel:  filepath.Join(dir, "kernel"),
		Initrd:  qemutest.Initrd(t, ""),
		Cmdline: qemutest.Cmdline + " " + cmdline,
		Timeout: bootTimeout,
	})
}

// TestBootPowerButton boots to the guest and powers off on qemu's
// system_powerdown: the ACPI button and evdev are built in.
func TestBootPowerButton(t *testing.T) {
	vm := boot(t, builtKernel(t), "bulkhead.guest=wait")
	if _, err := vm.WaitFor(context.Background(), "hello from guest", bootTimeout); err != nil {
		t.Fatalf("%v; console tail:\n%s", err, vm.Tail(40))
	}
	if _, err := vm.WaitFor(context.Background(), "guest waiting", bootTimeout); err != nil {
		t.Fatalf("%v; console tail:\n%s", err, vm.Tail(40))
	}
	if err := vm.Powerdown(); err != nil {
		t.Fatal(err)
	}
	qemutest.WantResult(t, vm, qemu.Poweroff)
	if !strings.Contains(vm.Console(), "power button pressed") {
		t.Errorf("the guest did not see the power button; console tail:\n%s", vm.Tail(40))
	}
}

// TestBootPanic ends in a kernel panic that the VM reports as such.
func TestBootPanic(t *testing.T) {
	vm := boot(t, builtKernel(t), "bulkhead.guest=panic")
	res := qemutest.WantResult(t, vm, qemu.Panic)
	if !strings.Contains(res.Detail, "Attempted to kill init") {
		t.Errorf("panic detail %q does not name the panic", res.Detail)
	}
}

// TestConfig checks the built kernel's config against the hardening the
// fragment asks for, and that it has no module to load.
func TestConfig(t *testing.T) {
	dir := builtKernel(t)
	cfg := readConfig(t, filepath.Join(dir, "kernel.config"))
	for _, want := range []string{
		"CONFIG_MODULE_SIG_FORCE=y", "CONFIG_SECURITY_LOCKDOWN_LSM=y", "CONFIG_DM_INIT=y",
		"CONFIG_DM_VERITY=y", "CONFIG_VIRTIO_BLK=y", "CONFIG_BLK_DEV_NVME=y", "CONFIG_EFI_STUB=y",
		"CONFIG_OVERLAY_FS=y", "CONFIG_CGROUP_BPF=y", "CONFIG_IKCONFIG=y",
	} {
		if !cfg[want] {
			t.Errorf("config lacks %s", want)
		}
	}
	for _, off := range []string{"CONFIG_KEXEC=y", "CONFIG_HIBERNATION=y", "CONFIG_DEBUG_FS=y", "CONFIG_IA32_EMULATION=y", "CONFIG_PROC_KCORE=y"} {
		if cfg[off] {
			t.Errorf("config has %s", off)
		}
	}
	for line := range cfg {
		if strings.HasSuffix(line, "=m") {
			t.Errorf("config builds a module: %s", line)
		}
	}
}

func readConfig(t *testing.T, name string) map[string]bool {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		cfg[sc.Text()] = true
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return cfg
}
