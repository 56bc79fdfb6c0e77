package main

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/dustin/go-humanize"

	"github.com/bulkhead-dev/bulkhead/builder/scan"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// goldenTree pins the root of the fixed spec in TestBuildGolden (every tar
// header and file content, in order, but the embedded SBOM, which names
// the test registry's random port): a change here means every user's
// image changes too, so it must be deliberate.
// Changed deliberately when config.json stopped asking for a cgroup
// namespace, as LinuxKit never does.
const goldenTree = "71ec08a4ef5c1c47651732945eecd3da1d088fc1b59fe6aafe48c41cc96a7e7a"

// treeDigest hashes every entry of the tar at p but the embedded SBOM.
func treeDigest(t *testing.T, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return hex.EncodeToString(h.Sum(nil))
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimPrefix(hdr.Name, "./") == scan.EmbedPath {
			continue
		}
		fmt.Fprintf(h, "%s %c %o %d %d %d %s %d %v\x00", hdr.Name, hdr.Typeflag, hdr.Mode, hdr.Uid, hdr.Gid, hdr.Size, hdr.Linkname, hdr.ModTime.Unix(), hdr.PAXRecords)
		if _, err := io.Copy(h, tr); err != nil {
			t.Fatal(err)
		}
	}
}

type tarFile struct {
	name, body string
	mode       int64
}

func tarBytes(t *testing.T, files ...tarFile) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		hdr := &tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.body)), Typeflag: tar.TypeReg}
		if strings.HasSuffix(f.name, "/") {
			hdr.Typeflag, hdr.Size = tar.TypeDir, 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, f.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// pushImage pushes a one-layer linux/amd64 image made of files.
func pushImage(t *testing.T, host, ref string, cmd []string, files ...tarFile) {
	t.Helper()
	data := tarBytes(t, files...)
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

// fixture serves a kernel, an init and a service image from an in-process
// registry on 127.0.0.1 and writes a spec using them.
func fixture(t *testing.T) (spec string) {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	modules := tarBytes(t, tarFile{"lib/modules/6.1.0-test/kernel/a.ko", "module a", 0o644})
	pushImage(t, host, "test/kernel:1", nil,
		tarFile{"kernel", "bzImage bytes", 0o644}, tarFile{"kernel.tar", string(modules), 0o644})
	pushImage(t, host, "test/init:1", nil,
		tarFile{"init", "#!init", 0o755}, tarFile{"usr/bin/", "", 0o755}, tarFile{"usr/bin/containerd", "ctrd", 0o755})
	pushImage(t, host, "test/web:1", []string{"/web"},
		tarFile{"web", "web binary", 0o755}, tarFile{"etc/passwd", "root:x:0:0::/:/web\n", 0o644})
	dir := t.TempDir()
	spec = filepath.Join(dir, "host.yml")
	data := strings.NewReplacer("HOST", host).Replace(`kernel:
  image: HOST/test/kernel:1
  cmdline: console=ttyS0
init:
  - HOST/test/init:1
services:
  - name: web
    image: HOST/test/web:1
    net: host
    readonly: true
files:
  - path: etc/motd
    contents: hi
`)
	if err := os.WriteFile(spec, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return spec
}

func buildOnce(t *testing.T, store, spec string, extra ...string) (out string, stderr string, code int) {
	t.Helper()
	out = t.TempDir()
	var so, se bytes.Buffer
	args := append([]string{"build", "--store", store, "-o", out, "--name", "host"}, extra...)
	code = run(context.Background(), append(args, spec), &so, &se)
	return out, se.String(), code
}

func fileDigest(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestBuildGoldenAndReproducible(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "")
	spec := fixture(t)
	store := t.TempDir()
	first, se, code := buildOnce(t, store, spec, "--format", "kernel+initrd,tar")
	if code != 0 {
		t.Fatalf("build exit %d: %s", code, se)
	}
	second, _, code := buildOnce(t, store, spec, "--format", "kernel+initrd,tar")
	if code != 0 {
		t.Fatal("second build failed")
	}
	cold, _, code := buildOnce(t, t.TempDir(), spec, "--format", "kernel+initrd,tar") // empty cache
	if code != 0 {
		t.Fatal("cold build failed")
	}
	for _, f := range []string{"host-kernel", "host-initrd.img", "host-cmdline", "host.tar"} {
		a := fileDigest(t, filepath.Join(first, f))
		if b := fileDigest(t, filepath.Join(second, f)); a != b {
			t.Errorf("%s differs between two builds", f)
		}
		if c := fileDigest(t, filepath.Join(cold, f)); a != c {
			t.Errorf("%s differs when built from an empty cache", f)
		}
	}
	if got := treeDigest(t, filepath.Join(first, "host.tar")); got != goldenTree {
		t.Errorf("tree digest %s, golden %s", got, goldenTree)
	}
}

func TestBuildMissingImageWritesNothing(t *testing.T) {
	spec := fixture(t)
	data, _ := os.ReadFile(spec)
	os.WriteFile(spec, bytes.Replace(data, []byte("test/web:1"), []byte("test/nope:1"), 1), 0o644)
	out, se, code := buildOnce(t, t.TempDir(), spec)
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr %s", code, se)
	}
	if want := "host.yml:8:12: resolving image"; !strings.Contains(se, want) || !strings.Contains(se, "test/nope:1") {
		t.Errorf("stderr %q does not name the spec position %q and the image", se, want)
	}
	if ents, _ := os.ReadDir(out); len(ents) != 0 {
		t.Errorf("output directory holds %d entries after a failed build", len(ents))
	}
}

func TestBuildLockedRefusesUnpinned(t *testing.T) {
	spec := fixture(t)
	lock := strings.TrimSuffix(spec, ".yml") + ".lock"
	if _, se, code := buildOnce(t, t.TempDir(), spec, "--locked"); code != 1 || se != "bulkhead build: "+lock+" not found: run bulkhead lock "+spec+"\n" {
		t.Errorf("no lock file: exit %d, stderr %q", code, se)
	}
	if err := os.WriteFile(lock, []byte("version: 1\nimages: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, se, code := buildOnce(t, t.TempDir(), spec, "--locked")
	if code != 1 || !strings.Contains(se, "not pinned") {
		t.Fatalf("exit %d, stderr %q: want a not-pinned error", code, se)
	}
	if ents, _ := os.ReadDir(out); len(ents) != 0 {
		t.Errorf("output directory holds %d entries after a refused build", len(ents))
	}
}

// buildJSON is what build --json prints.
type buildJSON struct {
	OK       bool              `json:"ok"`
	Errors   []validateProblem `json:"errors"`
	Warnings []validateProblem `json:"warnings"`
	Gates    struct {
		Scan *struct {
			Pass     bool     `json:"pass"`
			Failed   []string `json:"failed"`
			Packages int      `json:"packages"`
			Report   string   `json:"report"`
		} `json:"scan"`
	} `json:"gates"`
	Outputs []outputSummary `json:"outputs"`
}

func buildJSONOnce(t *testing.T, store, spec string) (buildJSON, int) {
	t.Helper()
	var so, se bytes.Buffer
	code := run(context.Background(), []string{"build", "--json", "--store", store, "-o", t.TempDir(), "--name", "host", spec}, &so, &se)
	var got buildJSON
	if err := json.Unmarshal(so.Bytes(), &got); err != nil {
		t.Fatalf("build --json (exit %d) printed no JSON: %v\nstdout %s\nstderr %s", code, err, so.String(), se.String())
	}
	return got, code
}

// TestBuildJSON: build --json prints its result on success and on
// failure, with the exit status unchanged: errors with their positions,
// warnings, and the gates' verdicts.
func TestBuildJSON(t *testing.T) {
	spec := fixture(t)
	store := t.TempDir()
	got, code := buildJSONOnce(t, store, spec)
	if code != 0 || !got.OK || len(got.Errors) != 0 || len(got.Outputs) == 0 {
		t.Fatalf("exit %d, %+v", code, got)
	}
	if s := got.Gates.Scan; s == nil || !s.Pass || s.Packages == 0 || filepath.Base(s.Report) != "host-scan.json" {
		t.Errorf("scan verdict %+v", s)
	}
	// The fixture's kernel image has no kernel.config: a warning.
	if len(got.Warnings) != 1 || !strings.Contains(got.Warnings[0].Message, "kernel check skipped") || got.Warnings[0].Severity != "warning" {
		t.Errorf("warnings %+v", got.Warnings)
	}

	data, _ := os.ReadFile(spec)
	missing := filepath.Join(filepath.Dir(spec), "missing.yml")
	os.WriteFile(missing, bytes.Replace(data, []byte("test/web:1"), []byte("test/nope:1"), 1), 0o644)
	got, code = buildJSONOnce(t, store, missing)
	if code != 1 || got.OK || len(got.Errors) != 1 {
		t.Fatalf("missing image: exit %d, %+v", code, got)
	}
	if e := got.Errors[0]; e.File != missing || e.Line != 8 || e.Col != 12 || !strings.Contains(e.Message, "test/nope:1") || strings.HasPrefix(e.Message, missing) {
		t.Errorf("error %+v, want %s:8:12 naming test/nope:1", e, missing)
	}

	secret := filepath.Join(filepath.Dir(spec), "secret.yml")
	os.WriteFile(secret, append(data, "  - path: etc/deploy.env\n    contents: \"DB=postgres://app:Xk29fLq7Zp@db:5432/app\"\n"...), 0o644)
	got, code = buildJSONOnce(t, store, secret)
	if code != 1 || got.OK || len(got.Errors) != 1 || got.Gates.Scan == nil || got.Gates.Scan.Pass || len(got.Gates.Scan.Failed) == 0 {
		t.Fatalf("secret: exit %d, %+v", code, got)
	}
	if !strings.Contains(got.Gates.Scan.Failed[0], "etc/deploy.env") {
		t.Errorf("failed gates %q", got.Gates.Scan.Failed)
	}
}

// TestBuildLinesAreNarrow: the lines build prints give sizes for people
// and shortened digests, under 100 columns; --json keeps whole digests
// and byte counts.
func TestBuildLinesAreNarrow(t *testing.T) {
	spec := fixture(t)
	store := t.TempDir()
	out := t.TempDir()
	var so, se bytes.Buffer
	if code := run(context.Background(), []string{"build", "--store", store, "-o", out, spec}, &so, &se); code != 0 {
		t.Fatalf("exit %d: %s", code, se.String())
	}
	lines := strings.Split(strings.TrimSuffix(so.String(), "\n"), "\n")
	if len(lines) < 5 {
		t.Fatalf("stdout:\n%s", so.String())
	}
	for _, l := range lines {
		f := strings.Fields(l)
		if n := utf8.RuneCountInString(l); n >= 100 || len(f) != 4 || !strings.HasPrefix(f[3], "sha256:") ||
			utf8.RuneCountInString(f[3]) != len("sha256:")+12+1 || !strings.HasSuffix(f[3], "…") {
			t.Errorf("line %q (%d columns)", l, n)
		}
		if info, err := os.Stat(f[0]); err != nil || humanize.Bytes(uint64(info.Size())) != f[1]+" "+f[2] {
			t.Errorf("line %q: size of %s is not %s (%v)", l, f[0], f[1]+" "+f[2], err)
		}
	}
	got, _ := buildJSONOnce(t, store, spec)
	for _, o := range got.Outputs {
		if len(o.Digest) != len("sha256:")+64 || o.Size == 0 {
			t.Errorf("--json output %+v", o)
		}
	}
}
