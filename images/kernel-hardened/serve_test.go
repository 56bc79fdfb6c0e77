package kernelhardened_test

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

	"github.com/bulkhead-dev/bulkhead/internal/qemu"
)

var bulkhead string // the CLI, built once by TestMain

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "bulkhead-kernel-hardened-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bulkhead = filepath.Join(dir, "bulkhead")
	cmd := exec.Command("go", "build", "-o", bulkhead, "../../cmd/bulkhead")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building bulkhead:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// TestHardenedHostServes builds examples/hardened.yml with the CLI (the
// hardened kernel image comes from the store: `make images` or `make
// kernel`), boots it, asks its web service through the port forward and
// powers it off. The hardened kernel has no modules: the init must load
// none and go on.
func TestHardenedHostServes(t *testing.T) {
	out := t.TempDir()
	cmd := exec.Command(bulkhead, "build", "-o", out, hardenedSpec)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("bulkhead build %s: %v\n%s\n(the component images come from `make images`)", hardenedSpec, err, stderr.String())
	}
	if strings.Contains(stderr.String(), "warning: kernel") {
		t.Errorf("the build warned about the kernel:\n%s", stderr.String())
	}
	report, err := os.ReadFile(filepath.Join(out, "kernel-check.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(report), "(passes: min 95%)") {
		t.Errorf("kernel-check.txt does not pass:\n%s", report)
	}

	prefix := filepath.Join(out, "hardened")
	vm, port := bootHost(t, prefix, 8080)
	for _, s := range []string{
		"bulkhead-init: stage0: loaded 0 modules",
		"bulkhead-init: started",
		"bulkhead-init: modules: loaded 0",
		"containerd ready",
		"bulkhead-init: onboot oneshot exited 0",
		"bulkhead-init: service hello started",
	} {
		if _, err := vm.WaitFor(context.Background(), s, 2*time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := get(t, port, time.Minute), "hello from hardened (hello dev)\n"; got != want {
		t.Fatalf("service answered %q, want %q", got, want)
	}
	if c := vm.Console(); !strings.Contains(c, "Command line: "+string(mustRead(t, prefix+"-cmdline"))) {
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

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSpace(data)
}

// bootHost starts the built host with guestPort forwarded to a free
// 127.0.0.1 port, which it returns.
func bootHost(t *testing.T, prefix string, guestPort int) (*qemu.VM, int) {
	t.Helper()
	hostPort, err := qemu.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	vm, err := qemu.Start(context.Background(), qemu.Config{
		Kernel: prefix + "-kernel", Initrd: prefix + "-initrd.img", Cmdline: string(mustRead(t, prefix+"-cmdline")),
		MemoryMB: 1024, CPUs: 1, Network: true, Timeout: 8 * time.Minute,
		Forwards: []qemu.Forward{{Proto: "tcp", HostAddr: "127.0.0.1", HostPort: hostPort, GuestPort: guestPort}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		vm.Kill()
		if t.Failed() {
			t.Logf("console tail:\n%s", vm.Tail(60))
		}
	})
	return vm, hostPort
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
