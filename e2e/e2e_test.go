// Package e2e builds the bundled examples with the bulkhead CLI and boots
// them under qemu (software emulation): the product's main job, end to end.
// It needs the component images in the store ($BULKHEAD_STORE): `make test`
// builds them first.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/builder/resolve"
	"github.com/bulkhead-dev/bulkhead/internal/qemu"
	"github.com/bulkhead-dev/bulkhead/internal/sdbootdeb"
)

var bulkhead string // the CLI, built once by TestMain

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "bulkhead-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bulkhead = filepath.Join(dir, "bulkhead")
	cmd := exec.Command("go", "build", "-o", bulkhead, "../cmd/bulkhead")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building bulkhead:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	sdbootdeb.Cleanup()
	os.Exit(code)
}

// buildSpec runs `bulkhead build` on spec into dir and returns the output prefix.
func buildSpec(t *testing.T, spec, dir string) string {
	t.Helper()
	prefix, _ := buildSpecStderr(t, spec, dir)
	return prefix
}

// buildSpecStderr is buildSpec, and what the build said on stderr.
func buildSpecStderr(t *testing.T, spec, dir string) (string, string) {
	t.Helper()
	cmd := exec.Command(bulkhead, "build", "-o", dir, spec)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("bulkhead build %s: %v\n%s\n(the component images come from `make images`)", spec, err, stderr.String())
	}
	return filepath.Join(dir, strings.TrimSuffix(filepath.Base(spec), ".yml")), stderr.String()
}

// boot starts the built host with the given guest ports forwarded to free
// 127.0.0.1 ports, returned in the same order.
func boot(t *testing.T, prefix string, guestPorts ...int) (*qemu.VM, []int) {
	t.Helper()
	cmdline, err := os.ReadFile(prefix + "-cmdline")
	if err != nil {
		t.Fatal(err)
	}
	cfg := qemu.Config{
		Kernel: prefix + "-kernel", Initrd: prefix + "-initrd.img", Cmdline: string(cmdline),
		MemoryMB: 1024, CPUs: 1, Network: true, Timeout: 8 * time.Minute,
	}
	return start(t, cfg, guestPorts...)
}

// start boots cfg with the given guest ports forwarded to free 127.0.0.1
// ports, returned in the same order; the VM is killed when the test ends,
// and a failed test logs the console's tail.
func start(t *testing.T, cfg qemu.Config, guestPorts ...int) (*qemu.VM, []int) {
	t.Helper()
	var hostPorts []int
	for _, gp := range guestPorts {
		hp, err := qemu.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		hostPorts = append(hostPorts, hp)
		cfg.Forwards = append(cfg.Forwards, qemu.Forward{Proto: "tcp", HostAddr: "127.0.0.1", HostPort: hp, GuestPort: gp})
	}
	vm, err := qemu.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		vm.Kill()
		if t.Failed() {
			t.Logf("console tail:\n%s", vm.Tail(60))
		}
	})
	return vm, hostPorts
}

func waitFor(t *testing.T, vm *qemu.VM, s string, timeout time.Duration) {
	t.Helper()
	if _, err := vm.WaitFor(context.Background(), s, timeout); err != nil {
		t.Fatal(err)
	}
}

// get asks the guest's service through the port forward until it answers.
func get(t *testing.T, port int, timeout time.Duration) string {
	t.Helper()
	client := &http.Client{Timeout: 3 * time.Second}
	deadline := time.Now().Add(timeout)
	var lastErr error
	for time.Now().Before(deadline) {
		resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
		if err == nil {
			body, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if rerr == nil && resp.StatusCode == http.StatusOK {
				return string(body)
			}
			lastErr = fmt.Errorf("status %s, body %q, %v", resp.Status, body, rerr)
		} else {
			lastErr = err
		}
		time.Sleep(time.Second)
	}
	t.Fatalf("no answer on 127.0.0.1:%d within %s: %v", port, timeout, lastErr)
	return ""
}

func TestMinimalBootsAndServes(t *testing.T) {
	prefix, stderr := buildSpecStderr(t, "../examples/minimal.yml", t.TempDir())
	// The README's first example builds without a warning.
	if strings.Contains(stderr, "warning") {
		t.Errorf("building examples/minimal.yml warned:\n%s", stderr)
	}
	vm, ports := boot(t, prefix, 8080)

	waitFor(t, vm, "bulkhead-init: started", 90*time.Second)
	waitFor(t, vm, "bulkhead-init: root is read-only", 30*time.Second)
	waitFor(t, vm, "containerd ready", 60*time.Second)
	waitFor(t, vm, "bulkhead-init: onboot oneshot exited 0", 60*time.Second)
	waitFor(t, vm, "bulkhead-init: service hello started", 60*time.Second)

	if got, want := get(t, ports[0], 60*time.Second), "hello from minimal (hello dev)\n"; got != want {
		t.Fatalf("service answered %q, want %q", got, want)
	}
	// qemu's DHCP server grants a day (restrict=on: no router, no DNS): T1
	// and T2 are RFC 2131's defaults.
	if lease := "bulkhead-init: network: eth0 10.0.2.15/24 lease 24h0m0s (renew 12h0m0s, rebind 21h0m0s)"; !strings.Contains(vm.Console(), lease) {
		t.Errorf("console lacks the DHCP lease line %q", lease)
	}
	if err := vm.Powerdown(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, vm, "bulkhead-init: running onshutdown", 60*time.Second)
	waitFor(t, vm, "bulkhead-init: onshutdown goodbye exited 0", 60*time.Second)
	waitFor(t, vm, "bulkhead-init: power off", 60*time.Second)
	res, err := vm.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if res.Reason != qemu.Poweroff {
		t.Fatalf("guest ended with %s (%s), want poweroff", res.Reason, res.Detail)
	}
}

func TestServicesRestartAndBackOff(t *testing.T) {
	prefix := buildSpec(t, "../examples/services.yml", t.TempDir())
	vm, ports := boot(t, prefix, 8080, 8081)

	waitFor(t, vm, "bulkhead-init: onboot first exited 0", 120*time.Second)
	waitFor(t, vm, "bulkhead-init: onboot second exited 0", 60*time.Second)
	if got := get(t, ports[0], 90*time.Second); got != "hello from services (hello dev)\n" {
		t.Fatalf("web answered %q", got)
	}
	if got := get(t, ports[1], 60*time.Second); got != "hello from services (hello dev)\n" {
		t.Fatalf("scratch answered %q", got)
	}
	// crashy exits with status 3 every 2 s: restarted, then backed off.
	waitFor(t, vm, "bulkhead-init: service crashy exited with status 3", 60*time.Second)
	waitFor(t, vm, "bulkhead-init: service crashy restarting in 1s", 30*time.Second)
	waitFor(t, vm, "bulkhead-init: service crashy crashed 3 times, backing off", 90*time.Second)
	// init and the other services are still fine.
	if got := get(t, ports[0], 30*time.Second); got != "hello from services (hello dev)\n" {
		t.Fatalf("web answered %q after crashy's crashes", got)
	}
	if err := vm.Powerdown(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, vm, "bulkhead-init: power off", 90*time.Second)
	if res, err := vm.Wait(); err != nil || res.Reason != qemu.Poweroff {
		t.Fatalf("guest ended with %+v, %v; want poweroff", res, err)
	}
}

// The same spec built twice gives the same bytes for every output.
func TestBuildIsReproducible(t *testing.T) {
	a := buildSpec(t, "../examples/minimal.yml", t.TempDir())
	// The second build takes the root image's archive from the store's
	// initrd cache; the third, with that cache gone, compresses it again.
	store, err := resolve.DefaultStoreDir()
	if err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(store, "cache", "initrd")
	if des, err := os.ReadDir(cache); err != nil || len(des) == 0 {
		t.Fatalf("no initrd archive cached in %s after a build (%v)", cache, err)
	}
	b := buildSpec(t, "../examples/minimal.yml", t.TempDir())
	if err := os.RemoveAll(cache); err != nil {
		t.Fatal(err)
	}
	c := buildSpec(t, "../examples/minimal.yml", t.TempDir())
	for _, suffix := range []string{"-kernel", "-initrd.img", "-cmdline"} {
		x, err := os.ReadFile(a + suffix)
		if err != nil {
			t.Fatal(err)
		}
		for i, other := range []string{b, c} {
			y, err := os.ReadFile(other + suffix)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(x, y) {
				t.Errorf("%s differs between build 1 and build %d (cache %s)", suffix, i+2, []string{"hit", "emptied"}[i])
			}
		}
	}
}
