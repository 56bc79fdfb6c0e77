package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/internal/hostapi"
	"github.com/bulkhead-dev/bulkhead/internal/qemu"
)

// updateSpec is examples/minimal.yml at a version, trusting release.pub for
// updates and ca/ca.pem for the host API.
func updateSpec(t *testing.T, dir, version string) string {
	t.Helper()
	spec, err := os.ReadFile("../examples/minimal.yml")
	if err != nil {
		t.Fatal(err)
	}
	extra := "boot:\n  version: " + version + "\n  settle: 3s\n" +
		"update:\n  keys: [../release.pub]\n  expires: 2099-01-01\n" +
		"api:\n  ca: ../ca/ca.pem\n"
	p := filepath.Join(dir, version, "host.yml")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, append(spec, extra...), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func cli(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(bulkhead, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("bulkhead %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
}

// TestUpdateThroughAPI is the A/B update end to end: a host at 1.0.0 takes
// a signed 2.0.0 bundle through its API, refuses one signed by another
// key, reboots into 2.0.0, blesses it, keeps 1.0.0 as its fallback, and
// rolls back to it on request.
func TestUpdateThroughAPI(t *testing.T) {
	dir := t.TempDir()
	cli(t, "keygen", filepath.Join(dir, "release"))
	cli(t, "keygen", filepath.Join(dir, "stranger"))
	cli(t, "ca", "init", "--dir", filepath.Join(dir, "ca"))
	cli(t, "ca", "issue", "--dir", filepath.Join(dir, "ca"), "operator")
	v1 := updateSpec(t, dir, "1.0.0")
	v2 := updateSpec(t, dir, "2.0.0")
	cli(t, "build", "--format", "raw-efi", "-o", filepath.Join(dir, "out1"), v1)
	cli(t, "build", "--format", "update", "--sign-key", filepath.Join(dir, "release.key"), "-o", filepath.Join(dir, "out2"), v2)
	cli(t, "build", "--format", "update", "--sign-key", filepath.Join(dir, "stranger.key"), "-o", filepath.Join(dir, "out3"), v2)

	dev := copyImage(t, filepath.Join(dir, "out1", "host.img"))
	cfg := qemu.Config{Disk: dev, UEFI: true, MemoryMB: 1024, CPUs: 1, Network: true, AllowReboot: true, Timeout: 15 * time.Minute}
	vm, ports := start(t, cfg, 8080, hostapi.DefaultPort)
	waitFor(t, vm, "boot: blessed entry bulkhead-1.0.0.conf", 5*time.Minute)

	host := func(args ...string) string {
		base := []string{"host", "--host", "127.0.0.1:" + itoa(ports[1]),
			"--cert", filepath.Join(dir, "ca", "operator.pem"), "--key", filepath.Join(dir, "ca", "operator.key"),
			"--known-hosts", filepath.Join(dir, "known_hosts")}
		return cli(t, append(base, args...)...)
	}
	status := func() hostapi.Status {
		var st hostapi.Status
		if err := json.Unmarshal([]byte(host("status", "--json")), &st); err != nil {
			t.Fatal(err)
		}
		return st
	}
	if st := status(); st.Version != "1.0.0" || len(st.Entries) != 1 || !st.Entries[0].Blessed {
		t.Fatalf("status before the update: %+v", st)
	}

	// Signed by a key the host does not trust: refused, nothing changes.
	out, err := exec.Command(bulkhead, "host", "--host", "127.0.0.1:"+itoa(ports[1]),
		"--cert", filepath.Join(dir, "ca", "operator.pem"), "--key", filepath.Join(dir, "ca", "operator.key"),
		"--known-hosts", filepath.Join(dir, "known_hosts"), "update", filepath.Join(dir, "out3", "host.bundle")).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "422") || !strings.Contains(string(out), "signature") {
		t.Fatalf("bundle of another key: %v\n%s", err, out)
	}
	if st := status(); len(st.Entries) != 1 {
		t.Fatalf("entries after a refused bundle: %+v", st.Entries)
	}

	start := time.Now()
	if got := host("update", "--reboot", filepath.Join(dir, "out2", "host.bundle")); !strings.Contains(got, "installed 2.0.0") {
		t.Fatalf("update: %s", got)
	}
	t.Logf("bundle applied in %s", time.Since(start).Round(time.Second))
	waitFor(t, vm, "boot: assessing bulkhead-2.0.0+2-1.conf", 5*time.Minute)
	waitFor(t, vm, "boot: blessed entry bulkhead-2.0.0.conf", 5*time.Minute)
	if body := get(t, ports[0], time.Minute); !strings.Contains(body, "hello from minimal") {
		t.Fatalf("service after the update: %q", body)
	}
	st := status()
	if st.Version != "2.0.0" || st.Floor != "2.0.0" || len(st.Entries) != 2 {
		t.Fatalf("status after the update: %+v", st)
	}
	for _, e := range st.Entries {
		if !e.Blessed || e.Running != (e.Version == "2.0.0") {
			t.Errorf("entry %+v", e)
		}
	}

	if got := host("rollback", "--reboot"); !strings.Contains(got, "next boot: bulkhead-1.0.0.conf") {
		t.Fatalf("rollback: %s", got)
	}
	waitFor(t, vm, "api: serving on", 5*time.Minute)
	waitFor(t, vm, "service hello healthy", 2*time.Minute)
	if st := status(); st.Version != "1.0.0" {
		t.Fatalf("status after the rollback: %+v", st)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
