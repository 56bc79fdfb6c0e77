package e2e

import (
	"encoding/json"
	"fmt"
	"github.com/bulkhead-dev/bulkhead/internal/test/testfile"
	"net"
	"net/http"
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

// updateHost is a host built from examples/minimal.yml at version 1.0.0,
// trusting release.pub for updates and an operator CA for its API, and
// the means to build other versions of it.
type updateHost struct {
	t     *testing.T
	dir   string
	vm    *qemu.VM
	ports []int  // 8080, then the API
	dev   string // the host's disk
	files string // 127.0.0.1:PORT of a file server the guest reaches as http://10.0.2.100/, or ""
}

func newUpdateHost(t *testing.T) *updateHost {
	t.Helper()
	u := &updateHost{t: t, dir: t.TempDir()}
	cli(t, "keygen", filepath.Join(u.dir, "release"))
	cli(t, "keygen", filepath.Join(u.dir, "stranger"))
	cli(t, "ca", "init", "--dir", filepath.Join(u.dir, "ca"))
	cli(t, "ca", "issue", "--dir", filepath.Join(u.dir, "ca"), "operator")
	return u
}

// spec writes a version of the host's spec: edit changes examples/minimal.yml
// (nil: as it is), bootExtra is added to its boot section.
func (u *updateHost) spec(version string, edit func(string) string, bootExtra string) string {
	u.t.Helper()
	b, err := os.ReadFile("../examples/minimal.yml")
	if err != nil {
		u.t.Fatal(err)
	}
	s := string(b)
	if edit != nil {
		s = edit(s)
	}
	s += "boot:\n  version: " + version + "\n  settle: 3s\n" + bootExtra +
		"update:\n  keys: [../release.pub]\n  expires: 2099-01-01\n" +
		"api:\n  ca: ../ca/ca.pem\n"
	p := filepath.Join(u.dir, version, "host.yml")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		u.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		u.t.Fatal(err)
	}
	return p
}

// bundle builds spec as an update bundle signed by key (release or
// stranger) and returns its path.
func (u *updateHost) bundle(spec, key string, flags ...string) string {
	u.t.Helper()
	out := filepath.Join(filepath.Dir(spec), "out-"+key)
	args := append([]string{"build", "--format", "update", "--sign-key", filepath.Join(u.dir, key+".key"), "-o", out}, flags...)
	cli(u.t, append(args, spec)...)
	return filepath.Join(out, "host.bundle")
}

// boot builds version 1.0.0 as raw-efi and boots it (reboots allowed),
// and waits for it to be blessed.
func (u *updateHost) boot() {
	u.t.Helper()
	v1 := u.spec("1.0.0", nil, "")
	cli(u.t, "build", "--format", "raw-efi", "-o", filepath.Join(u.dir, "out1"), v1)
	u.dev = copyImage(u.t, filepath.Join(u.dir, "out1", "host.img"))
	u.coldBoot()
	waitFor(u.t, u.vm, "boot: blessed entry bulkhead-1.0.0.conf", 5*time.Minute)
}

// coldBoot starts the host's disk in a new qemu (fresh firmware
// variables), reboots allowed.
func (u *updateHost) coldBoot() {
	u.t.Helper()
	cfg := qemu.Config{Disk: u.dev, UEFI: true, MemoryMB: 1024, CPUs: 1, Network: true, AllowReboot: true, Timeout: 30 * time.Minute}
	if u.files == "" {
		u.vm, u.ports = start(u.t, cfg, 8080, hostapi.DefaultPort)
		return
	}
	// The guest reaches the file server at 10.0.2.100:80 through a
	// guestfwd relay; the rest is the restricted network start makes.
	u.ports = []int{freePort(u.t), freePort(u.t)}
	nic := fmt.Sprintf("user,model=virtio-net-pci,restrict=on,hostfwd=tcp:127.0.0.1:%d-:8080,hostfwd=tcp:127.0.0.1:%d-:%d",
		u.ports[0], u.ports[1], hostapi.DefaultPort) + ",guestfwd=tcp:10.0.2.100:80-cmd:" + guestfwd(u.t) + " " + u.files
	cfg.Network, cfg.ExtraArgs = false, []string{"-nic", nic}
	u.vm, _ = start(u.t, cfg)
}

func (u *updateHost) hostArgs(args ...string) []string {
	return append([]string{"host", "--host", "127.0.0.1:" + strconv.Itoa(u.ports[1]),
		"--cert", filepath.Join(u.dir, "ca", "operator.pem"), "--key", filepath.Join(u.dir, "ca", "operator.key"),
		"--known-hosts", filepath.Join(u.dir, "known_hosts")}, args...)
}

func (u *updateHost) host(args ...string) string {
	u.t.Helper()
	return cli(u.t, u.hostArgs(args...)...)
}

// refused uploads a bundle the host must refuse, and checks the answer
// names the rule and that the host's entries did not change.
func (u *updateHost) refused(bundle, rule string) {
	u.t.Helper()
	before := u.status().Entries
	out, err := exec.Command(bulkhead, u.hostArgs("update", bundle)...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "422") || !strings.Contains(string(out), rule) {
		u.t.Fatalf("bundle %s: %v\n%s\nwant a 422 naming %q", bundle, err, out, rule)
	}
	if after := u.status().Entries; !sameEntries(before, after) {
		u.t.Fatalf("entries changed by a refused bundle: %+v -> %+v", before, after)
	}
}

func sameEntries(a, b []hostapi.Entry) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func (u *updateHost) status() hostapi.Status {
	u.t.Helper()
	var st hostapi.Status
	if err := json.Unmarshal([]byte(u.host("status", "--json")), &st); err != nil {
		u.t.Fatal(err)
	}
	return st
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

// TestUpdateThroughAPI is the A/B update end to end: a host at 1.0.0 is
// told through its API to fetch a signed 2.0.0 bundle from a URL, reboots
// into it, blesses it, keeps 1.0.0 as its fallback, and rolls back to it
// on request.
func TestUpdateThroughAPI(t *testing.T) {
	u := newUpdateHost(t)
	v2 := u.bundle(u.spec("2.0.0", nil, ""), "release")
	u.files = serveFiles(t, filepath.Dir(v2))
	u.boot()
	if st := u.status(); st.Version != "1.0.0" || len(st.Entries) != 1 || !st.Entries[0].Blessed {
		t.Fatalf("status before the update: %+v", st)
	}
	// The host downloads the bundle itself.
	start := time.Now()
	if got := u.host("update", "--reboot", "http://10.0.2.100/"+filepath.Base(v2)); !strings.Contains(got, "installed 2.0.0") {
		t.Fatalf("update: %s", got)
	}
	t.Logf("bundle applied in %s", time.Since(start).Round(time.Second))
	rebootAsked := time.Now()
	waitFor(t, u.vm, "boot: assessing bulkhead-2.0.0+2-1.conf", 5*time.Minute)
	waitFor(t, u.vm, "first service (hello) running", 5*time.Minute)
	get(t, u.ports[0], time.Minute)
	t.Logf("downtime: %s from the reboot request to the service answering again (accelerator %s)",
		time.Since(rebootAsked).Round(100*time.Millisecond), u.vm.Accel().Name)
	waitFor(t, u.vm, "boot: blessed entry bulkhead-2.0.0.conf", 5*time.Minute)
	if body := get(t, u.ports[0], time.Minute); !strings.Contains(body, "hello from minimal") {
		t.Fatalf("service after the update: %q", body)
	}
	st := u.status()
	if st.Version != "2.0.0" || st.Floor != "2.0.0" || len(st.Entries) != 2 {
		t.Fatalf("status after the update: %+v", st)
	}
	for _, e := range st.Entries {
		if !e.Blessed || e.Running != (e.Version == "2.0.0") {
			t.Errorf("entry %+v", e)
		}
	}
	if got := u.host("rollback", "--reboot"); !strings.Contains(got, "next boot: bulkhead-1.0.0.conf") {
		t.Fatalf("rollback: %s", got)
	}
	waitFor(t, u.vm, "api: serving on", 5*time.Minute)
	waitFor(t, u.vm, "service hello healthy", 2*time.Minute)
	if st := u.status(); st.Version != "1.0.0" {
		t.Fatalf("status after the rollback: %+v", st)
	}
}

// TestBadUpdates: bundles the host must refuse before writing a byte, then
// versions that fail after the commit (a service that never gets healthy,
// a kernel panic, a hung init): each time the host ends on 1.0.0, blessed
// and serving. The time from the commit to serving 1.0.0 again is logged.
func TestBadUpdates(t *testing.T) {
	u := newUpdateHost(t)
	good := u.spec("2.0.0", nil, "")
	stranger := u.bundle(good, "stranger")
	expired := u.bundle(u.spec("2.0.1", nil, ""), "release", "--expires", "2001-01-01")
	downgrade := u.bundle(u.spec("0.9.0", nil, ""), "release")
	unhealthy := u.bundle(u.spec("3.0.0", func(s string) string {
		return strings.Replace(s, "http: http://127.0.0.1:8080/healthz", "tcp: 127.0.0.1:9", 1)
	}, "  deadline: 30s\n"), "release")
	panics := u.bundle(u.spec("4.0.0", func(s string) string {
		return strings.Replace(s, "panic=-1", "panic=-1 bulkhead.fault=panic", 1)
	}, ""), "release")
	hangs := u.bundle(u.spec("5.0.0", func(s string) string {
		return strings.Replace(s, "panic=-1", "panic=-1 bulkhead.fault=hang bulkhead.watchdog=5s", 1)
	}, ""), "release")
	flipped := copyFile(t, u.bundle(good, "release"), "flipped.bundle")
	testfile.FlipByte(t, flipped, -4096)
	truncated := copyFile(t, flipped, "truncated.bundle")
	testfile.FlipByte(t, truncated, -4096) // undo
	truncate(t, truncated, 3<<20)

	u.boot()
	u.refused(stranger, "signature")
	u.refused(expired, "expir")
	u.refused(downgrade, "version")
	u.refused(flipped, "digest")
	u.refused(truncated, "digest")

	for _, c := range []struct {
		name, bundle, entry, sign string
	}{
		{"unhealthy service", unhealthy, "bulkhead-3.0.0", "boot: marked entry bulkhead-3.0.0+0-1.conf bad; rebooting into bulkhead-1.0.0.conf"},
		{"kernel panic", panics, "bulkhead-4.0.0", "fault injection: bulkhead.fault=panic"},
		{"hung init", hangs, "bulkhead-5.0.0", "fault injection: bulkhead.fault=hang"},
	} {
		u.host("update", "--reboot", c.bundle)
		committed := time.Now()
		waitFor(t, u.vm, c.sign, 5*time.Minute)
		waitFor(t, u.vm, "bulkhead-init: data: boot", 10*time.Minute)
		waitFor(t, u.vm, "service hello healthy", 10*time.Minute)
		st := u.status()
		if st.Version != "1.0.0" {
			t.Fatalf("%s: running %s, want 1.0.0; entries %+v", c.name, st.Version, st.Entries)
		}
		if body := get(t, u.ports[0], time.Minute); !strings.Contains(body, "hello from minimal") {
			t.Fatalf("%s: service answered %q", c.name, body)
		}
		t.Logf("%s: back on 1.0.0, serving, %s after the commit", c.name, time.Since(committed).Round(time.Second))
	}
}

func copyFile(t *testing.T, src, name string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dst
}

func truncate(t *testing.T, p string, size int64) {
	t.Helper()
	if err := os.Truncate(p, size); err != nil {
		t.Fatal(err)
	}
}

func execCommand(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}

// serveFiles serves dir over HTTP on 127.0.0.1 until the test ends and
// returns the address.
func serveFiles(t *testing.T, dir string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.FileServer(http.Dir(dir))}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}
