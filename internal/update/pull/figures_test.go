package pull_test

import (
	"cmp"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/bulkhead-dev/bulkhead/builder/publish"
	"github.com/bulkhead-dev/bulkhead/internal/bootentry"
	"github.com/bulkhead-dev/bulkhead/internal/host/apply"
	"github.com/bulkhead-dev/bulkhead/internal/update"
	"github.com/bulkhead-dev/bulkhead/internal/update/chunk"
	"github.com/bulkhead-dev/bulkhead/internal/update/pull"
)

// Partition GUIDs of the figures' host.
const (
	guidA    = "11111111-1111-4111-8111-111111111111"
	guidB    = "22222222-2222-4222-8222-222222222222"
	guidData = "33333333-3333-4333-8333-333333333333"
)

// TestRegistryFigures measures pulls of real bundles (scripts/registry-
// bench builds them into $BULKHEAD_REGBENCH): for each spec and variant,
// the bytes a registry on 127.0.0.1 served for a host on 1.0.0 to install
// the variant, against the bundle's size; the pull's time against crane
// blob fetching as many bytes; the pulling process's peak RSS; and, after
// a cut at half the bytes, what the resumed pull fetched again.
func TestRegistryFigures(t *testing.T) {
	dir := os.Getenv("BULKHEAD_REGBENCH")
	if dir == "" {
		t.Skip("BULKHEAD_REGBENCH not set (make bench sets it)")
	}
	crane, err := filepath.Abs("../../../bin/crane")
	if err != nil {
		t.Fatal(err)
	}
	logf := func(format string, args ...any) { t.Logf("figures: "+format, args...) }
	runs := 5
	if n, err := strconv.Atoi(os.Getenv("BULKHEAD_REGBENCH_RUNS")); err == nil && n > 0 {
		runs = n
	}
	logf("times are medians of %d pulls (BULKHEAD_REGBENCH_RUNS), each against crane blob right after it", runs)
	logf("%-8s %-8s %10s %10s %8s %9s %9s %9s %8s %9s %9s", "spec", "change", "bundle", "fetched", "%", "pull", "fetching", "crane", "ratio", "peak RSS", "no delta")
	for _, spec := range strings.Fields(cmp.Or(os.Getenv("BULKHEAD_REGBENCH_SPECS"), "minimal large")) {
		host := newBenchHost(t, filepath.Join(dir, spec+"-1.0.0.bundle"), filepath.Join(dir, "release.pub"))
		root, _ := host.m.Payload(update.PayloadRoot)
		logf("%s: root image %d bytes", spec, root.Size)
		for _, change := range []string{"service", "runc", "kernel", "init", "none"} {
			bundle := filepath.Join(dir, spec+"-"+change+".bundle")
			r := host.measure(t, bundle, crane, 0, runs)
			logf("%-8s %-8s %10d %10d %7.2f%% %9s %9s %9s %7.1fx %7.1fMB %8.2f%%", spec, change, r.bundle, r.served, 100*float64(r.served)/float64(r.bundle),
				r.pull.Round(time.Millisecond), r.fetch.Round(time.Millisecond), r.crane.Round(time.Millisecond),
				r.ratio, float64(r.rss)/(1<<20), 100*float64(r.plain)/float64(r.bundle))
			if change == "service" {
				cut := host.measure(t, bundle, crane, r.served-r.stats.ChunkBytes/2, 1)
				logf("%-8s cut at half the chunk bytes: first pull verified %d chunk bytes; resumed pull fetched %d chunk bytes; a whole pull %d: %d verified bytes fetched again",
					spec, cut.firstChunks, cut.stats.ChunkBytes, r.stats.ChunkBytes, cut.firstChunks+cut.stats.ChunkBytes-r.stats.ChunkBytes)
			}
		}
	}
}

// benchHost is a host running a bundle's version from slot a: files for
// the slots, a directory for the ESP.
type benchHost struct {
	dir, slotA, esp string
	m               *update.Manifest
	kernel, initrd  string
	keys            string
	// bundle is the host's version's bundle, base its chunk index.
	bundle string
	base   *publish.Published
}

func newBenchHost(t *testing.T, bundle, keys string) *benchHost {
	t.Helper()
	h := &benchHost{dir: t.TempDir(), keys: keys, bundle: bundle}
	base, err := publish.Load(t.Context(), bundle, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	h.base = base
	h.slotA, h.esp = filepath.Join(h.dir, "root-a"), filepath.Join(h.dir, "esp")
	f, err := os.Open(bundle)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, _, err := update.InspectReader(f)
	if err != nil {
		t.Fatal(err)
	}
	h.m = r.Manifest()
	e := bootentry.Entry{Version: h.m.Version, Initrd: true}
	paths := map[string]string{update.PayloadRoot: h.slotA}
	for _, fl := range e.Files() {
		paths[fl.Payload] = filepath.Join(h.esp, fl.Path)
	}
	h.kernel, h.initrd = paths[update.PayloadKernel], paths[update.PayloadInitrd]
	for {
		p, pr, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(filepath.Dir(paths[p.Name]), 0o755)
		out, err := os.Create(paths[p.Name])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(out, pr); err != nil {
			t.Fatal(err)
		}
		out.Close()
	}
	entry, err := h.m.Entry(guidA, guidData)
	if err != nil {
		t.Fatal(err)
	}
	entry.Tries = 0
	writeFile(t, filepath.Join(h.esp, entry.Path()), []byte(entry.Conf()))
	return h
}

type benchResult struct {
	bundle, served int64
	pull, crane    time.Duration
	fetch          time.Duration
	ratio          float64 // median of each run's fetch time over crane's
	plain          int64   // what the plan says a host fetches without deltas
	rss            int64
	stats          pull.Stats
	firstChunks    int64
}

// measure pushes bundle to a fresh counting registry and has a child
// process pull it onto slot b (and a fresh copy of the ESP and an empty
// cache) runs times; with cutAt > 0 a first pull is cut after that many
// blob bytes. Times are the median of the runs, each pull's fetch phase
// timed against crane blob fetching as many bytes right after it.
func (h *benchHost) measure(t *testing.T, bundle, crane string, cutAt int64, runs int) benchResult {
	t.Helper()
	reg := &countingRegistry{h: registry.New(registry.Logger(log.New(io.Discard, "", 0))), served: map[string]int64{}}
	srv := httptest.NewServer(reg)
	defer srv.Close()
	work := t.TempDir()
	a, err := publish.Chunk(t.Context(), bundle, work, chunk.Default)
	if err != nil {
		t.Fatal(err)
	}
	ib, _ := a.Index.Marshal()
	plain := publish.MakePlan(h.base, &publish.Published{Index: a.Index, Meta: int64(len(ib) + len(a.ManifestJSON) + len(a.Envelope))})
	if err := publish.AddDeltas(t.Context(), a, h.bundle, work); err != nil {
		t.Fatal(err)
	}
	host := strings.TrimPrefix(srv.URL, "http://")
	ref := host + "/hosts/bench:new"
	r, _ := name.ParseReference(ref)
	if _, err := publish.Push(t.Context(), a, r); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(bundle)
	res := benchResult{bundle: fi.Size(), plain: plain.Fetch}
	slotB := filepath.Join(work, "root-b")
	if err := os.WriteFile(slotB, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Truncate(slotB, 2<<30)
	var pulls, fetches, cranes []time.Duration
	var blob string
	for i := range runs {
		esp, cache := filepath.Join(work, fmt.Sprintf("esp-%d", i)), filepath.Join(work, fmt.Sprintf("chunks-%d", i))
		if err := exec.Command("cp", "-a", h.esp, esp).Run(); err != nil {
			t.Fatal(err)
		}
		if cutAt > 0 {
			reg.reset()
			reg.budget, reg.budgetOn = cutAt, true
			first, _, _, err := h.child(t, ref, slotB, esp, cache)
			if err == nil {
				t.Fatalf("a pull cut at %d bytes succeeded", cutAt)
			}
			res.firstChunks = first.ChunkBytes
			reg.budgetOn = false
		}
		reg.reset()
		st, d, rss, err := h.child(t, ref, slotB, esp, cache)
		if err != nil {
			t.Fatalf("pulling %s: %v", bundle, err)
		}
		res.stats, res.rss = st, max(res.rss, rss)
		res.served, _ = reg.total()
		if blob == "" {
			blob = pushBlob(t, host, res.served)
		}
		pulls, fetches = append(pulls, d), append(fetches, st.Fetch)
		cranes = append(cranes, craneBlob(t, crane, blob))
	}
	res.pull, res.fetch, res.crane = median(pulls), median(fetches), median(cranes)
	ratios := make([]float64, runs)
	for i := range ratios {
		ratios[i] = float64(fetches[i]) / float64(max(cranes[i], 1))
	}
	res.ratio = median(ratios)
	return res
}

func median[T cmp.Ordered](xs []T) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// pushBlob pushes a blob of n random bytes and returns its reference.
func pushBlob(t *testing.T, host string, n int64) string {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	l := static.NewLayer(b, types.MediaType("application/octet-stream"))
	repo, _ := name.NewRepository(host + "/hosts/blob")
	if err := remote.WriteLayer(repo, l); err != nil {
		t.Fatal(err)
	}
	d, _ := l.Digest()
	return repo.String() + "@" + d.String()
}

// craneBlob times crane blob fetching blob.
func craneBlob(t *testing.T, crane, blob string) time.Duration {
	t.Helper()
	start := time.Now()
	cmd := exec.Command(crane, "blob", "--insecure", blob)
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("crane blob: %v: %s", err, stderr.String())
	}
	return time.Since(start)
}

// childParams are what the child pull is given.
type childParams struct {
	Ref, SlotA, SlotB, ESP, Cache, Keys, Kernel, Initrd string
	DataSize                                            int64
}

type childResult struct {
	Stats pull.Stats
	Err   string
	// HWM is the child's peak RSS (VmHWM): the exit status's rusage
	// would report the parent's, whose memory the child shared until exec.
	HWM int64
}

// peakRSS reads this process's VmHWM.
func peakRSS() int64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			var kb int64
			fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), &kb)
			return kb << 10
		}
	}
	return 0
}

// child runs TestPullChild in a new process and returns its stats, wall
// time and peak RSS.
func (h *benchHost) child(t *testing.T, ref, slotB, esp, cache string) (pull.Stats, time.Duration, int64, error) {
	p, _ := h.m.Params()
	in, _ := json.Marshal(childParams{Ref: ref, SlotA: h.slotA, SlotB: slotB, ESP: esp, Cache: cache, Keys: h.keys,
		Kernel: strings.Replace(h.kernel, h.esp, esp, 1), Initrd: strings.Replace(h.initrd, h.esp, esp, 1), DataSize: int64(p.DataBlocks) * 4096})
	cmd := exec.Command(os.Args[0], "-test.run=^TestPullChild$")
	if prof := os.Getenv("BULKHEAD_PULL_PROFILE"); prof != "" {
		cmd.Args = append(cmd.Args, "-test.memprofile="+prof, "-test.memprofilerate=65536")
	}
	cmd.Env = append(os.Environ(), "BULKHEAD_PULL_CHILD="+string(in))
	start := time.Now()
	out, err := cmd.Output()
	d := time.Since(start)
	if err != nil {
		t.Fatalf("child: %v: %s", err, out)
	}
	var res childResult
	line := out[strings.Index(string(out), "{"):]
	if err := json.NewDecoder(strings.NewReader(string(line))).Decode(&res); err != nil {
		t.Fatalf("child said %s", out)
	}
	rss := res.HWM
	if res.Err != "" {
		return res.Stats, d, rss, fmt.Errorf("%s", res.Err)
	}
	return res.Stats, d, rss, nil
}

// TestPullChild is the pulling process of TestRegistryFigures: what the
// agent does, in a process of its own so its memory is measured alone.
func TestPullChild(t *testing.T) {
	env := os.Getenv("BULKHEAD_PULL_CHILD")
	if env == "" {
		t.Skip("run by TestRegistryFigures")
	}
	var p childParams
	if err := json.Unmarshal([]byte(env), &p); err != nil {
		t.Fatal(err)
	}
	st, err := childPull(t, p)
	res := childResult{Stats: st, HWM: peakRSS()}
	if err != nil {
		res.Err = err.Error()
	}
	json.NewEncoder(os.Stdout).Encode(res)
}

func childPull(t *testing.T, p childParams) (pull.Stats, error) {
	kb, err := os.ReadFile(p.Keys)
	if err != nil {
		return pull.Stats{}, err
	}
	keys, err := update.ParsePublicKeys(kb)
	if err != nil {
		return pull.Stats{}, err
	}
	var opts []pull.Option
	for _, s := range []struct {
		name, path string
		size       int64
	}{{"running root", p.SlotA, p.DataSize}, {"kernel", p.Kernel, -1}, {"initrd", p.Initrd, -1}} {
		f, err := os.Open(s.path)
		if err != nil {
			return pull.Stats{}, err
		}
		defer f.Close()
		if s.size < 0 {
			fi, _ := f.Stat()
			s.size = fi.Size()
		}
		opts = append(opts, pull.WithSeed(pull.Seed{Name: s.name, R: f, Size: s.size}))
	}
	u, err := pull.New(p.Ref, append(opts, pull.WithCache(p.Cache), pull.WithTries(2))...)
	if err != nil {
		return pull.Stats{}, err
	}
	m, keyID, err := u.Verify(t.Context(), keys)
	if err != nil {
		return u.Stats(), err
	}
	slot, size, err := apply.OpenSlot(p.SlotB)
	if err != nil {
		return u.Stats(), err
	}
	defer slot.Close()
	h := apply.Host{Arch: m.Arch, Version: "1.0.0", Entry: "bulkhead-1.0.0.conf", RootGUID: guidA, DataGUID: guidData, Keys: keys}
	tg := apply.Target{Slot: slot, SlotSize: size, SlotGUID: guidB, ESP: p.ESP}
	_, err = apply.Install(t.Context(), p.Ref, m, keyID, u, h, tg, apply.WithClock(func() time.Time { return m.Created.Add(time.Hour) }))
	if err == nil {
		err = u.Clean()
	}
	return u.Stats(), err
}
