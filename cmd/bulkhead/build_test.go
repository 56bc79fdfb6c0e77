package main

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
