package e2e

import (
	"crypto/sha256"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/bulkhead-dev/bulkhead/builder/publish"
	"github.com/bulkhead-dev/bulkhead/internal/hostapi"
	"github.com/bulkhead-dev/bulkhead/internal/qemu"
	"github.com/bulkhead-dev/bulkhead/internal/update/chunk"
)

// registryAddr is where the guest reaches the test's registry: qemu runs
// a proxy to the registry's 127.0.0.1 port for each connection to it.
const registryAddr = "10.0.2.100:5000"

// servedRegistry is a registry on 127.0.0.1 that counts the blob bytes
// it serves, logs which byte ranges of which blobs it served, and can be
// told to misbehave: drop every connection once it has served a budget of
// blob bytes, or flip a byte of ranged blob responses.
type servedRegistry struct {
	srv   *httptest.Server
	blobs atomic.Int64

	mu sync.Mutex
	// budget, when budgetOn, is how many more blob bytes it serves before
	// it drops every blob response (a registry gone away mid-pull).
	budget   int64
	budgetOn bool
	// corrupt is how many more ranged blob responses get byte 40 flipped
	// (-1: all of them).
	corrupt int
	log     []served
}

// served is one blob response: n bytes of blob from off; flipped is the
// blob offset of the byte flipped, or -1.
type served struct {
	blob         string
	off, n       int64
	flipped      int64
	rangeRequest bool
}

func newServedRegistry(t *testing.T) *servedRegistry {
	r := &servedRegistry{}
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if strings.Contains(req.URL.Path, "/blobs/") && req.Method == http.MethodGet {
			bw := r.blobWriter(w, req)
			defer r.logResponse(bw)
			w = bw
		}
		h.ServeHTTP(w, req)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *servedRegistry) host() string { return strings.TrimPrefix(r.srv.URL, "http://") }

// misbehave sets the budget (<0: unlimited) and how many ranged
// responses to corrupt (-1: all).
func (r *servedRegistry) misbehave(budget int64, corrupt int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.budget, r.budgetOn, r.corrupt = budget, budget >= 0, corrupt
}

func (r *servedRegistry) blobWriter(w http.ResponseWriter, req *http.Request) *blobWriter {
	bw := &blobWriter{ResponseWriter: w, r: r, s: served{blob: req.URL.Path[strings.LastIndex(req.URL.Path, "/")+1:], flipped: -1}}
	if rg := req.Header.Get("Range"); rg != "" {
		bw.s.rangeRequest = true
		fmt.Sscanf(rg, "bytes=%d-", &bw.rangeStart)
	}
	r.mu.Lock()
	if bw.s.rangeRequest && r.corrupt != 0 {
		r.corrupt--
		bw.flip = true
	}
	r.mu.Unlock()
	return bw
}

func (r *servedRegistry) logResponse(bw *blobWriter) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log = append(r.log, bw.s)
}

// blobWriter serves one blob response as the registry is told to.
type blobWriter struct {
	http.ResponseWriter
	r          *servedRegistry
	s          served
	rangeStart int64
	flip       bool
}

func (w *blobWriter) WriteHeader(code int) {
	if code == http.StatusPartialContent {
		w.s.off = w.rangeStart
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *blobWriter) Write(b []byte) (int, error) {
	w.r.mu.Lock()
	cut := false
	if w.r.budgetOn {
		if int64(len(b)) > w.r.budget {
			b, cut = b[:w.r.budget], true
		}
		w.r.budget -= int64(len(b))
	}
	w.r.mu.Unlock()
	if w.flip && w.s.n <= 40 && w.s.n+int64(len(b)) > 40 {
		b = append([]byte(nil), b...)
		b[40-w.s.n] ^= 0xff
		w.s.flipped = w.s.off + 40
	}
	n, err := w.ResponseWriter.Write(b)
	w.s.n += int64(n)
	w.r.blobs.Add(int64(n))
	if cut {
		if f, ok := w.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
		panic(http.ErrAbortHandler) // drops the connection
	}
	return n, err
}

func (w *blobWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// deltasServed counts the deltas of x served whole.
func (r *servedRegistry) deltasServed(x *chunk.Index) int {
	n := 0
	for _, k := range r.intact(&chunk.Index{Packs: x.Deltas.Packs}) {
		n += k
	}
	return n
}

// intact counts, for each chunk of x, the responses that carried all of
// its stored bytes, or of its delta's, unaltered: what a host can have
// verified.
func (r *servedRegistry) intact(x *chunk.Index) map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	counts := map[string]int{}
	packs := x.Packs
	if x.Deltas != nil {
		packs = append(slices.Clone(packs), x.Deltas.Packs...)
	}
	for _, s := range r.log {
		for _, p := range packs {
			if p.Digest != s.blob {
				continue
			}
			for _, c := range p.Chunks {
				end := c.Offset + c.Stored
				whole := c.Offset >= s.off && end <= s.off+s.n
				hit := s.flipped >= c.Offset && s.flipped < end
				if whole && !hit {
					counts[c.SHA256]++
				}
			}
		}
	}
	return counts
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

// TestUpdateFromRegistry: a host at 1.0.0 pulls 2.0.0 (which adds 3 MiB
// the host lacks) from a registry on the host's 127.0.0.1, through a qemu
// guest forward. An update signed by a key it does not trust is refused
// before any chunk is fetched. The registry then goes away after about a
// third of the chunk bytes: the update fails and the host stays as it
// was. Then it serves every chunk range with a wrong byte: the update
// fails naming the chunk, the host still as it was. Then it serves one
// bad range and the rest right: the pull resumes, refetches the bad
// chunk, installs 2.0.0, which boots and is blessed; over all four
// attempts no chunk was served intact twice.
func TestUpdateFromRegistry(t *testing.T) {
	u := newUpdateHost(t)
	reg := newServedRegistry(t)
	v1 := u.spec("1.0.0", nil, "")
	v2 := u.bundle(u.spec("2.0.0", u.withPayload("2.0.0", 3<<20), ""), "release")
	bad := u.bundle(u.spec("2.0.1", nil, ""), "stranger")
	cli(t, "update", "push", "--from", u.bundle(v1, "release"), v2, reg.host()+"/hosts/minimal:2.0.0")
	cli(t, "update", "push", bad, reg.host()+"/hosts/minimal:stranger")
	pub, err := publish.Load(t.Context(), reg.host()+"/hosts/minimal:2.0.0", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}

	cli(t, "build", "--format", "raw-efi", "-o", u.dir+"/out1", v1)
	u.dev = copyImage(t, u.dir+"/out1/host.img")
	cfg := qemu.Config{Disk: u.dev, UEFI: true, MemoryMB: 1024, CPUs: 1, Network: true, AllowReboot: true,
		Timeout: 30 * time.Minute, GuestForwards: []qemu.GuestForward{reg.guestForward(t)}}
	u.vm, u.ports = start(t, cfg, 8080, hostapi.DefaultPort)
	waitFor(t, u.vm, "boot: blessed entry bulkhead-1.0.0.conf", 5*time.Minute)
	before := u.status()

	reg.blobs.Store(0)
	out, err := exec.Command(bulkhead, u.hostArgs("update", "--ref", "http://"+registryAddr+"/hosts/minimal:stranger")...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "422") {
		t.Fatalf("update signed by a stranger: %v\n%s", err, out)
	}
	if n := reg.blobs.Load(); n > 64<<10 {
		t.Errorf("the registry served %d blob bytes before the refusal", n)
	}

	ref := "http://" + registryAddr + "/hosts/minimal:2.0.0"
	reg.blobs.Store(0)
	reg.misbehave(pub.Meta+1<<20, 0)
	u.failedPull(ref, before, "")
	cut := reg.blobs.Load()
	if n := len(reg.intact(pub.Index)); n == 0 {
		t.Fatalf("no chunk was served whole before the cut at %d bytes", cut)
	}
	t.Logf("cut after %d blob bytes: %d chunks had been served whole", cut, len(reg.intact(pub.Index)))

	reg.misbehave(-1, -1)
	msg := u.failedPull(ref, before, "does not match its digest")
	if !namesChunk(msg, pub.Index) {
		t.Errorf("the failure names no chunk of the index: %s", msg)
	}

	reg.misbehave(-1, 1)
	start := time.Now()
	got := u.host("update", "--reboot", "--ref", ref)
	if !strings.Contains(got, "installed 2.0.0") {
		t.Fatalf("update: %s", got)
	}
	fi, _ := os.Stat(v2)
	t.Logf("resumed pull in %s: %d blob bytes in all four attempts, of a %d-byte bundle (%.1f%%): %s", time.Since(start).Round(time.Second),
		reg.blobs.Load(), fi.Size(), 100*float64(reg.blobs.Load())/float64(fi.Size()), strings.TrimSpace(got))
	for c, n := range reg.intact(pub.Index) {
		if n > 1 {
			t.Errorf("chunk %s was served whole %d times", c, n)
		}
	}
	// 2.0.0's directory and inode blocks differ from 1.0.0's by a file:
	// the host fetched them as deltas against its running root (pushed
	// --from 1.0.0's bundle)
	if pub.Index.Deltas == nil || reg.deltasServed(pub.Index) == 0 {
		t.Errorf("the registry served no delta (the index has deltas: %t)", pub.Index.Deltas != nil)
	}
	waitFor(t, u.vm, "boot: blessed entry bulkhead-2.0.0.conf", 10*time.Minute)
	if st := u.status(); st.Version != "2.0.0" || len(st.Entries) != 2 {
		t.Fatalf("status after the update: %+v", st)
	}
}

// withPayload adds a file of n pseudo-random bytes (the same for a
// version every time) to the spec of version: data the host lacks.
func (u *updateHost) withPayload(version string, n int) func(string) string {
	b := make([]byte, n)
	rand.NewChaCha8(sha256.Sum256([]byte("registry e2e payload " + version))).Read(b)
	p := filepath.Join(u.dir, version, "payload.bin")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		u.t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		u.t.Fatal(err)
	}
	return func(s string) string {
		return s + "  - path: usr/share/payload\n    source: payload.bin\n    mode: \"0644\"\n"
	}
}

// failedPull asks the host to pull ref, which must fail with an error
// containing want, and checks the host's entries and version did not
// change. It returns the error's text.
func (u *updateHost) failedPull(ref string, before hostapi.Status, want string) string {
	u.t.Helper()
	out, err := exec.Command(bulkhead, u.hostArgs("update", "--ref", ref)...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), want) {
		u.t.Fatalf("pull of %s: %v\n%s\nwant a failure saying %q", ref, err, out, want)
	}
	u.t.Logf("pull failed as it should: %s", strings.TrimSpace(string(out)))
	if after := u.status(); after.Version != before.Version || !sameEntries(before.Entries, after.Entries) {
		u.t.Fatalf("a failed pull changed the host: %+v -> %+v", before, after)
	}
	return string(out)
}

// namesChunk says whether msg names a chunk of x by its digest.
func namesChunk(msg string, x *chunk.Index) bool {
	for _, p := range x.Packs {
		for _, c := range p.Chunks {
			if strings.Contains(msg, "chunk "+c.SHA256) {
				return true
			}
		}
	}
	return false
}
