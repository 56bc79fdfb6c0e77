package pull_test

import (
	"bytes"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/bulkhead-dev/bulkhead/builder/bundler"
	"github.com/bulkhead-dev/bulkhead/builder/disk"
	"github.com/bulkhead-dev/bulkhead/builder/publish"
	"github.com/bulkhead-dev/bulkhead/builder/rootfs"
	"github.com/bulkhead-dev/bulkhead/builder/rootimg"
	"github.com/bulkhead-dev/bulkhead/builder/sign"
	"github.com/bulkhead-dev/bulkhead/internal/host/apply"
	"github.com/bulkhead-dev/bulkhead/internal/update"
	"github.com/bulkhead-dev/bulkhead/internal/update/chunk"
	"github.com/bulkhead-dev/bulkhead/internal/update/pull"
)

const (
	oldVersion = "1.0.0"
	newVersion = "1.1.0"
	epoch      = 1700000000
)

var (
	created = time.Unix(epoch, 0).UTC()
	expires = created.Add(30 * 24 * time.Hour)
	now     = created.Add(time.Hour)
)

// version is one build of the test host.
type version struct {
	name           string
	root           string
	img            *rootimg.Image
	kernel, initrd []byte
	options        string
}

// files are the test root's files: 40 of 20 to 200 KiB, pseudo-random
// (so zstd cannot hide what chunking does); changed names the one whose
// bytes differ in the new version.
func files(v string, changed int) map[string][]byte {
	out := map[string][]byte{}
	for i := range 40 {
		r := rand.New(rand.NewPCG(uint64(i), 1))
		if i == changed && v == newVersion {
			r = rand.New(rand.NewPCG(uint64(i), 2))
		}
		b := make([]byte, 20<<10+r.IntN(180<<10))
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		out[fmt.Sprintf("containers/svc%02d/rootfs/bin/app", i)] = b
	}
	out["etc/version"] = []byte(v + "\n")
	return out
}

func buildVersion(t testing.TB, dir, v string) version {
	t.Helper()
	return buildVersionFiles(t, dir, v, files(v, 17))
}

func buildVersionFiles(t testing.TB, dir, v string, fs map[string][]byte) version {
	t.Helper()
	tr := rootfs.New()
	for p, data := range fs {
		tr.Put(&rootfs.Entry{Path: p, Kind: rootfs.KindFile, Mode: 0o644, Size: int64(len(data)), ModTime: epoch, Content: rootfs.Content{Data: data}})
	}
	root := filepath.Join(dir, v+".root")
	f, err := os.Create(root)
	if err != nil {
		t.Fatal(err)
	}
	img, err := rootimg.Write(t.Context(), tr, f, rootimg.WithEpoch(epoch))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	kr := rand.New(rand.NewPCG(99, 1))
	kernel := make([]byte, 600<<10)
	for j := range kernel {
		kernel[j] = byte(kr.Uint32())
	}
	return version{
		name: v, root: root, img: img, kernel: kernel,
		initrd:  []byte("initrd of " + v + strings.Repeat("i", 70000)),
		options: "console=ttyS0 panic=-1 " + img.Verity.Cmdline(),
	}
}

func (v version) input() bundler.Input {
	return bundler.Input{
		Host: "test", Version: v.name, Arch: "amd64", Created: created, Expires: expires,
		Root: v.root, Verity: v.img.Verity, Kernel: v.kernel, Initrd: v.initrd, Options: v.options, Tries: 3,
	}
}

// fixture is a host running oldVersion from slot a, blessed: its ESP as
// a directory, its slots as files; and a registry on 127.0.0.1.
type fixture struct {
	dir      string
	old, new version
	key      *sign.PrivateKey
	host     apply.Host
	layout   *disk.Layout
	esp      string
	slotA    string
	slotB    string
	reg      *countingRegistry
	srv      *httptest.Server
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{dir: dir, old: buildVersion(t, dir, oldVersion), new: buildVersion(t, dir, newVersion), key: newKey(t)}
	img := filepath.Join(dir, "old.img")
	in := disk.RawInput{
		Bootloader: disk.FromBytes([]byte("systemd-boot")),
		Entries:    []disk.Entry{{Version: oldVersion, Kernel: disk.FromBytes(f.old.kernel), Initrd: disk.FromBytes(f.old.initrd), Options: f.old.options, Slot: "a"}},
		RootA:      disk.FromFile(f.old.root), ESPSize: 64 * disk.MiB, RootSize: 16 * disk.MiB, DataSize: disk.MiB, Seed: []byte("pull test"),
	}
	l, err := disk.WriteRaw(t.Context(), img, in)
	if err != nil {
		t.Fatal(err)
	}
	f.layout = l
	f.esp = filepath.Join(dir, "esp")
	extractESP(t, img, f.esp, oldVersion)
	a, _ := l.Partition("root-a")
	b, _ := l.Partition("root-b")
	data, _ := l.Partition("data")
	f.slotA, f.slotB = filepath.Join(dir, "root-a"), filepath.Join(dir, "root-b")
	writeFile(t, f.slotA, readRange(t, img, a.Offset, a.Size))
	writeFile(t, f.slotB, readRange(t, img, b.Offset, b.Size))
	os.Remove(img)
	f.host = apply.Host{
		Name: "test", Arch: "amd64", Version: oldVersion, Entry: "bulkhead-" + oldVersion + ".conf",
		RootGUID: a.GUID, DataGUID: data.GUID, Keys: hostKeys(t, f.key),
	}
	f.reg = &countingRegistry{h: registry.New(registry.Logger(log.New(io.Discard, "", 0))), served: map[string]int64{}}
	f.srv = httptest.NewServer(f.reg)
	t.Cleanup(f.srv.Close)
	return f
}

// push publishes v signed with key at tag v.name and returns its ref.
func (f *fixture) push(t testing.TB, v version, key *sign.PrivateKey) (string, *publish.Artifact) {
	return f.pushDeltas(t, v, key, nil)
}

// pushDeltas publishes v, with deltas against the root of from when it
// is not nil.
func (f *fixture) pushDeltas(t testing.TB, v version, key *sign.PrivateKey, from *version) (string, *publish.Artifact) {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, v.name+".bundle")
	if _, err := bundler.Write(t.Context(), p, v.input(), key); err != nil {
		t.Fatal(err)
	}
	a, err := publish.Chunk(t.Context(), p, dir, chunk.Default)
	if err != nil {
		t.Fatal(err)
	}
	if from != nil {
		old := filepath.Join(dir, "from.bundle")
		if _, err := bundler.Write(t.Context(), old, from.input(), key); err != nil {
			t.Fatal(err)
		}
		if err := publish.AddDeltas(t.Context(), a, old, dir); err != nil {
			t.Fatal(err)
		}
	}
	ref := strings.TrimPrefix(f.srv.URL, "http://") + "/hosts/test:" + v.name
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := publish.Push(t.Context(), a, r); err != nil {
		t.Fatal(err)
	}
	f.reg.reset()
	return ref, a
}

// target opens slot b as apply does.
func (f *fixture) target(t testing.TB) (apply.Target, func()) {
	t.Helper()
	s, size, err := apply.OpenSlot(f.slotB)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := f.layout.Partition("root-b")
	return apply.Target{Slot: s, SlotSize: size, SlotGUID: b.GUID, ESP: f.esp}, func() { s.Close() }
}

// pull runs a whole pull of ref as the agent does: verify, then install.
func (f *fixture) pull(t testing.TB, ref string, opts ...pull.Option) (*pull.Update, *apply.Result, error) {
	t.Helper()
	tg, done := f.target(t)
	defer done()
	running, err := os.Open(f.slotA)
	if err != nil {
		t.Fatal(err)
	}
	defer running.Close()
	seed := pull.Seed{Name: "running slot", R: running, Size: int64(f.old.img.Verity.DataBlocks) * 4096}
	opts = append([]pull.Option{pull.WithCache(filepath.Join(f.dir, "var", "chunks")), pull.WithSeed(seed),
		pull.WithSeed(pull.Seed{Name: "kernel", R: bytes.NewReader(f.old.kernel), Size: int64(len(f.old.kernel))}),
		pull.WithSeed(pull.Seed{Name: "initrd", R: bytes.NewReader(f.old.initrd), Size: int64(len(f.old.initrd))})}, opts...)
	u, err := pull.New(ref, opts...)
	if err != nil {
		t.Fatal(err)
	}
	m, keyID, err := u.Verify(t.Context(), f.host.Keys)
	if err != nil {
		return u, nil, err
	}
	res, err := apply.Install(t.Context(), ref, m, keyID, u, f.host, tg, apply.WithClock(func() time.Time { return now }))
	if err == nil {
		err = u.Clean()
	}
	return u, res, err
}

// countingRegistry counts the bytes it serves per path, and lets a test
// cut or corrupt what it serves.
type countingRegistry struct {
	h      http.Handler
	mu     sync.Mutex
	served map[string]int64
	// cutAfter, when positive, ends blob responses after that many more
	// bytes; cuts counts how many more responses are cut.
	cutAfter int64
	cuts     int
	// budget, when positive, is how many blob bytes the registry serves
	// in all before it cuts every blob response (a registry gone away).
	budget   int64
	budgetOn bool
	// corrupt, when set, flips a byte of blob responses at this offset
	// of a ranged response, times more times (-1: always).
	corrupt      bool
	corruptTimes int
}

func (c *countingRegistry) reset() {
	c.mu.Lock()
	c.served = map[string]int64{}
	c.mu.Unlock()
}

func (c *countingRegistry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	cw := &countingWriter{ResponseWriter: w, c: c, path: r.URL.Path}
	c.mu.Lock()
	if strings.Contains(r.URL.Path, "/blobs/") && r.Method == http.MethodGet {
		if c.cuts > 0 {
			c.cuts--
			cw.limit = c.cutAfter
		}
		cw.budget = c.budgetOn
		if c.corrupt && c.corruptTimes != 0 && r.Header.Get("Range") != "" {
			c.corruptTimes--
			cw.flip = true
		}
	}
	c.mu.Unlock()
	c.h.ServeHTTP(cw, r)
}

// total is what the registry served, and blobs what it served of blobs.
func (c *countingRegistry) total() (all, blobs int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for p, n := range c.served {
		all += n
		if strings.Contains(p, "/blobs/") {
			blobs += n
		}
	}
	return all, blobs
}

type countingWriter struct {
	http.ResponseWriter
	c       *countingRegistry
	path    string
	limit   int64 // >0: cut after this many bytes
	written int64
	flip    bool
	budget  bool
}

func (w *countingWriter) Write(b []byte) (int, error) {
	if w.budget {
		w.c.mu.Lock()
		left := w.c.budget
		w.c.budget -= int64(len(b))
		w.c.mu.Unlock()
		if left <= 0 {
			panic(http.ErrAbortHandler)
		}
		w.limit = w.written + left
	}
	if w.limit > 0 && w.written+int64(len(b)) > w.limit {
		b = b[:w.limit-w.written]
		w.count(b)
		w.ResponseWriter.Write(b)
		panic(http.ErrAbortHandler) // drops the connection
	}
	if w.flip && w.written == 0 && len(b) > 40 {
		b = append([]byte(nil), b...)
		b[40] ^= 0xff
	}
	w.count(b)
	return w.ResponseWriter.Write(b)
}

func (w *countingWriter) count(b []byte) {
	w.written += int64(len(b))
	w.c.mu.Lock()
	defer w.c.mu.Unlock()
	w.c.served[w.path] += int64(len(b))
}

func newKey(t testing.TB) *sign.PrivateKey {
	t.Helper()
	priv, _, err := sign.GenerateKey(sign.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	k, err := sign.ParsePrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func hostKeys(t testing.TB, k *sign.PrivateKey) []*update.PublicKey {
	keys, err := update.ParsePublicKeys(k.Public().PEM())
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

func extractESP(t testing.TB, img, dir string, versions ...string) {
	t.Helper()
	names, err := disk.ReadEntries(img)
	if err != nil {
		t.Fatal(err)
	}
	files := []string{"loader/loader.conf", "EFI/BOOT/BOOTX64.EFI"}
	for _, n := range names {
		files = append(files, "loader/entries/"+n)
	}
	for _, v := range versions {
		files = append(files, "bulkhead/"+v+"/linux", "bulkhead/"+v+"/initrd")
	}
	for _, n := range files {
		b, err := disk.ReadESPFile(img, n)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, n), b)
	}
}

func readRange(t testing.TB, path string, off, size int64) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, size)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t testing.TB, p string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
