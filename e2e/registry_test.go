package e2e

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/bulkhead-dev/bulkhead/internal/hostapi"
	"github.com/bulkhead-dev/bulkhead/internal/qemu"
)

// registryAddr is where the guest reaches the test's registry: qemu runs
// a proxy to the registry's 127.0.0.1 port for each connection to it.
const registryAddr = "10.0.2.100:5000"

// servedRegistry is a registry on 127.0.0.1 that counts the blob bytes
// it serves.
type servedRegistry struct {
	srv   *httptest.Server
	blobs atomic.Int64
}

func newServedRegistry(t *testing.T) *servedRegistry {
	r := &servedRegistry{}
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if strings.Contains(req.URL.Path, "/blobs/") && req.Method == http.MethodGet {
			w = countingWriter{w, &r.blobs}
		}
		h.ServeHTTP(w, req)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *servedRegistry) host() string { return strings.TrimPrefix(r.srv.URL, "http://") }

type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (w countingWriter) Write(b []byte) (int, error) {
	n, err := w.ResponseWriter.Write(b)
	w.n.Add(int64(n))
	return n, err
}

// guestForward is the guest forward to the registry: a proxy to its
// 127.0.0.1 port (testdata/guestproxy) for each guest connection.
func (r *servedRegistry) guestForward(t *testing.T) qemu.GuestForward {
	t.Helper()
	proxy := filepath.Join(t.TempDir(), "guestproxy")
	if out, err := exec.Command("go", "build", "-o", proxy, "./testdata/guestproxy").CombinedOutput(); err != nil {
		t.Fatalf("building the guest proxy: %v\n%s", err, out)
	}
	host, port, _ := strings.Cut(registryAddr, ":")
	p, _ := strconv.Atoi(port)
	return qemu.GuestForward{GuestAddr: host, GuestPort: p, Command: proxy + " " + r.host()}
}

// TestUpdateFromRegistry: a host at 1.0.0 pulls 2.0.0 from a registry on
// the host's 127.0.0.1 (through a qemu guest forward), fetching a small
// part of it, reboots into it and blesses it; an update signed by a key
// it does not trust is refused before any chunk is fetched.
func TestUpdateFromRegistry(t *testing.T) {
	u := newUpdateHost(t)
	reg := newServedRegistry(t)
	v2 := u.bundle(u.spec("2.0.0", nil, ""), "release")
	bad := u.bundle(u.spec("2.0.1", nil, ""), "stranger")
	cli(t, "update", "push", v2, reg.host()+"/hosts/minimal:2.0.0")
	cli(t, "update", "push", bad, reg.host()+"/hosts/minimal:stranger")

	v1 := u.spec("1.0.0", nil, "")
	cli(t, "build", "--format", "raw-efi", "-o", u.dir+"/out1", v1)
	u.dev = copyImage(t, u.dir+"/out1/host.img")
	cfg := qemu.Config{Disk: u.dev, UEFI: true, MemoryMB: 1024, CPUs: 1, Network: true, AllowReboot: true,
		Timeout: 30 * time.Minute, GuestForwards: []qemu.GuestForward{reg.guestForward(t)}}
	u.vm, u.ports = start(t, cfg, 8080, hostapi.DefaultPort)
	waitFor(t, u.vm, "boot: blessed entry bulkhead-1.0.0.conf", 5*time.Minute)

	reg.blobs.Store(0)
	out, err := exec.Command(bulkhead, u.hostArgs("update", "--ref", "http://"+registryAddr+"/hosts/minimal:stranger")...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "422") {
		t.Fatalf("update signed by a stranger: %v\n%s", err, out)
	}
	if n := reg.blobs.Load(); n > 64<<10 {
		t.Errorf("the registry served %d blob bytes before the refusal", n)
	}

	reg.blobs.Store(0)
	start := time.Now()
	got := u.host("update", "--reboot", "--ref", "http://"+registryAddr+"/hosts/minimal:2.0.0")
	if !strings.Contains(got, "installed 2.0.0") {
		t.Fatalf("update: %s", got)
	}
	fi, _ := os.Stat(v2)
	t.Logf("pulled in %s: %d blob bytes of a %d-byte bundle (%.1f%%): %s", time.Since(start).Round(time.Second),
		reg.blobs.Load(), fi.Size(), 100*float64(reg.blobs.Load())/float64(fi.Size()), strings.TrimSpace(got))
	waitFor(t, u.vm, "boot: blessed entry bulkhead-2.0.0.conf", 10*time.Minute)
	if st := u.status(); st.Version != "2.0.0" || len(st.Entries) != 2 {
		t.Fatalf("status after the update: %+v", st)
	}
}
