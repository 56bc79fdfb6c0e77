package build

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/bulkhead-dev/bulkhead/builder/kernelcheck"
	"github.com/bulkhead-dev/bulkhead/builder/rootfs"
	"github.com/bulkhead-dev/bulkhead/builder/scan"
	"github.com/bulkhead-dev/bulkhead/internal/host/sysctl"
)

type tarFile struct {
	name, body string
	mode       int64
}

// pushImage pushes a one-layer linux/amd64 image made of files.
func pushImage(t *testing.T, host, ref string, cmd []string, files ...tarFile) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, f.body)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Config.Cmd = "linux", "amd64", cmd
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	n, err := name.ParseReference(host + "/" + ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(n, img); err != nil {
		t.Fatal(err)
	}
}

// fixture serves a kernel, an init (not bulkhead's) and a service image
// from an in-process registry on 127.0.0.1 and writes a spec using them.
func fixture(t *testing.T, extra string) (spec string) {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	var modules bytes.Buffer
	tw := tar.NewWriter(&modules)
	tw.WriteHeader(&tar.Header{Name: "lib/modules/6.1.0-test/kernel/a.ko", Mode: 0o644, Size: 8, Typeflag: tar.TypeReg})
	io.WriteString(tw, "module a")
	tw.Close()
	pushImage(t, host, "test/kernel:1", nil, tarFile{"kernel", "bzImage bytes", 0o644}, tarFile{"kernel.tar", modules.String(), 0o644})
	pushImage(t, host, "test/init:1", nil, tarFile{"init", "#!init", 0o755})
	pushImage(t, host, "test/web:1", []string{"/web"}, tarFile{"web", "web binary", 0o755})
	spec = filepath.Join(t.TempDir(), "host.yml")
	data := strings.ReplaceAll(`kernel:
  image: HOST/test/kernel:1
  cmdline: console=ttyS0
init:
  - HOST/test/init:1
services:
  - name: web
    image: HOST/test/web:1
`+extra, "HOST", host)
	if err := os.WriteFile(spec, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return spec
}

// events collects a build's events.
type events []Event

func (e *events) Event(ev Event) { *e = append(*e, ev) }

func (e events) stages() []string {
	var out []string
	for _, ev := range e {
		if len(out) == 0 || out[len(out)-1] != ev.Stage {
			out = append(out, ev.Stage)
		}
	}
	return out
}

// TestStagesReturnValues runs the stages one by one: the gates return the
// SBOM entry, and applying it gives a new tree that shares no entry with
// the assembled one, which stays as it was.
func TestStagesReturnValues(t *testing.T) {
	ctx := context.Background()
	b, err := New([]string{fixture(t, "")}, WithStore(t.TempDir()), WithName("host"))
	if err != nil {
		t.Fatal(err)
	}
	l, err := b.Load()
	if err != nil {
		t.Fatal(err)
	}
	res, err := b.Resolve(ctx, l)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.List) != 3 || !strings.HasSuffix(res.List[0].Ref, "test/kernel:1") || !strings.HasPrefix(res.List[0].Digest, "sha256:") {
		t.Fatalf("resolved %+v", res.List)
	}
	host, err := b.Assemble(ctx, l, res)
	if err != nil {
		t.Fatal(err)
	}
	before := host.Tree.Len()
	g, err := b.Gates(ctx, l, res, host, DetectInit(host.Tree))
	if err != nil {
		t.Fatal(err)
	}
	if g.SBOM == nil || g.SBOM.Path != scan.EmbedPath || !bytes.Equal(g.SBOM.Content.Data, g.Scan.SPDX) {
		t.Fatalf("SBOM entry %+v", g.SBOM)
	}
	if host.Tree.Get(scan.EmbedPath) != nil || host.Tree.Len() != before {
		t.Fatal("the gates edited the assembled tree")
	}
	withSBOM := g.Apply(host)
	if withSBOM.Tree.Get(scan.EmbedPath) == nil || host.Tree.Get(scan.EmbedPath) != nil {
		t.Fatal("Apply did not give a new tree with the SBOM")
	}
	assertNoSharedEntries(t, host.Tree, withSBOM.Tree)
}

func assertNoSharedEntries(t *testing.T, a, b *rootfs.Tree) {
	t.Helper()
	seen := map[*rootfs.Entry]bool{}
	a.Walk(func(e *rootfs.Entry) error { seen[e] = true; return nil })
	b.Walk(func(e *rootfs.Entry) error {
		if seen[e] {
			t.Errorf("entry %q is shared by both trees", e.Path)
		}
		return nil
	})
}

// TestBuildReportsThroughProgress builds kernel+initrd and tar: the
// outputs land in the directory, and every step reaches the Progress,
// stage by stage in pipeline order.
func TestBuildReportsThroughProgress(t *testing.T) {
	var ev events
	out := t.TempDir()
	b, err := New([]string{fixture(t, "")}, WithStore(t.TempDir()), WithOutput(out), WithName("host"),
		WithFormats("kernel+initrd", "tar"), WithProgress(&ev))
	if err != nil {
		t.Fatal(err)
	}
	r, err := b.Build(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ev.stages(), []string{"resolve", "assemble", "gates", "write"}; !slices.Equal(got, want) {
		t.Errorf("stages %q, want %q", got, want)
	}
	var names []string
	for _, o := range r.Outputs {
		if filepath.Dir(o.Path) != out || !strings.HasPrefix(o.Digest, "sha256:") {
			t.Errorf("output %+v", o)
		}
		if _, err := os.Stat(o.Path); err != nil {
			t.Error(err)
		}
		names = append(names, filepath.Base(o.Path))
	}
	for _, want := range []string{"host-kernel", "host-initrd.img", "host-cmdline", "host.tar", scan.SPDXFile} {
		if !slices.Contains(names, want) {
			t.Errorf("outputs %q lack %s", names, want)
		}
	}
	// The fixture's kernel image has no kernel.config: a warning, not a
	// failure, and no report.
	if !slices.ContainsFunc(ev, func(e Event) bool {
		return e.Warning && e.Stage == "gates" && strings.Contains(e.Message, "kernel check skipped")
	}) || slices.Contains(names, KernelReportName) {
		t.Errorf("kernel check: events %+v, outputs %q", ev, names)
	}
	if r.Root != nil {
		t.Errorf("a host without bulkhead's init got a verified root: %+v", r.Root)
	}
}

// TestVerifiedFormatsNeedBulkheadInit: raw-efi refuses a host whose /init
// is not bulkhead's, and leaves nothing in the output directory.
func TestVerifiedFormatsNeedBulkheadInit(t *testing.T) {
	out := t.TempDir()
	spec := fixture(t, "disk:\n  bootloader: HOST/test/web:1\n")
	b, err := New([]string{spec}, WithStore(t.TempDir()), WithOutput(out), WithFormats("raw-efi"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.Build(context.Background())
	if err == nil || !strings.Contains(err.Error(), "a verified root needs bulkhead's init") {
		t.Fatalf("err = %v", err)
	}
	if ents, _ := os.ReadDir(out); len(ents) != 0 {
		t.Errorf("output directory holds %d entries", len(ents))
	}
}

// TestCheckNeedsNoImages: the spec-level checks of an update build fail
// before any image is resolved (the spec's registry is not even running).
func TestCheckNeedsNoImages(t *testing.T) {
	spec := filepath.Join(t.TempDir(), "host.yml")
	os.WriteFile(spec, []byte("kernel:\n  image: 127.0.0.1:1/nope:1\n"), 0o644)
	b, err := New([]string{spec}, WithFormats("update"))
	if err != nil {
		t.Fatal(err)
	}
	l, err := b.Load()
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Check(l); err == nil || !strings.Contains(err.Error(), "must be signed") {
		t.Errorf("unsigned update: %v", err)
	}
	if _, err := b.Build(context.Background()); err == nil || !strings.Contains(err.Error(), "must be signed") {
		t.Errorf("Build of an unsigned update: %v", err)
	}
}

// TestResolveErrorsArePositioned: a missing image is an ImageErrors whose
// line names where the spec refers to it.
func TestResolveErrorsArePositioned(t *testing.T) {
	spec := fixture(t, "onboot:\n  - name: gone\n    image: HOST/test/gone:1\n")
	b, err := New([]string{spec}, WithStore(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.Build(context.Background())
	var ie *ImageErrors
	if !errors.As(err, &ie) || len(ie.Errs) != 1 || !strings.HasPrefix(ie.Error(), spec+":11:12: ") || !strings.Contains(ie.Error(), "test/gone:1") {
		t.Fatalf("err = %v", err)
	}
}

func TestStage0TreeSharesNoEntries(t *testing.T) {
	tr := rootfs.New()
	for _, e := range []*rootfs.Entry{
		{Path: "init", Kind: rootfs.KindFile, Mode: 0o755, Size: 4, Content: rootfs.Content{Data: []byte("init")}},
		{Path: Stage0Binary, Kind: rootfs.KindFile, Mode: 0o755, Size: 6, Content: rootfs.Content{Data: []byte("stage0")}},
		{Path: "lib/modules/6.1/kernel/a.ko", Kind: rootfs.KindFile, Mode: 0o644, Xattrs: map[string]string{"user.x": "1"}},
		{Path: "etc/hostname", Kind: rootfs.KindFile, Mode: 0o644},
	} {
		tr.Put(e)
	}
	s := Stage0Tree(tr)
	if s.Get("etc/hostname") != nil || s.Get("lib/modules/6.1/kernel/a.ko") == nil {
		t.Fatal("stage-0 tree holds the wrong files")
	}
	if got := string(s.Get("init").Content.Data); got != "stage0" {
		t.Fatalf("stage 0's /init is %q", got)
	}
	assertNoSharedEntries(t, tr, s)
	s.Get("lib/modules/6.1/kernel/a.ko").Xattrs["user.x"] = "2"
	if tr.Get("lib/modules/6.1/kernel/a.ko").Xattrs["user.x"] != "1" {
		t.Error("the trees share an xattr map")
	}
}

// TestKernelCheckGetsTheInitsSysctls: only bulkhead's init is credited
// with the hardening sysctls; for another init the sysctl rules are not
// checked (nobody knows what it applies).
func TestKernelCheckGetsTheInitsSysctls(t *testing.T) {
	if !slices.Equal(Sysctls(BulkheadInit), sysctl.Hardening) || Sysctls(OtherInit) != nil {
		t.Fatal("Sysctls")
	}
	sysctlCategory := func(sysctls []sysctl.Setting) kernelcheck.CategoryResult {
		rep, _, err := kernelcheck.CheckHost([]byte("CONFIG_MODULES=y\n"), "console=ttyS0", sysctls, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range rep.Categories {
			if len(c.Rows) > 0 && c.Rows[0].Kind == kernelcheck.KindSysctl {
				return c
			}
		}
		t.Fatal("no sysctl category")
		return kernelcheck.CategoryResult{}
	}
	if c := sysctlCategory(Sysctls(OtherInit)); c.Checked {
		t.Error("another init's sysctls were credited")
	}
	if c := sysctlCategory(Sysctls(BulkheadInit)); !c.Checked || c.Score == 0 {
		t.Errorf("bulkhead's init's sysctls: %+v", c)
	}
}
