package recipe

import (
	"archive/tar"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/bulkhead-dev/bulkhead/builder/resolve"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// TestBuildReproducible builds the example images twice, each time with an
// empty cache, and wants the same digests; it checks what the images hold.
func TestBuildReproducible(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		dir, bin, ref string
	}{
		{"hello", "hello", "bulkhead/hello:dev"},
		{"oneshot", "oneshot", "bulkhead/oneshot:dev"},
	} {
		t.Run(tc.dir, func(t *testing.T) {
			r, err := Load(filepath.Join("..", "..", "images", tc.dir))
			if err != nil {
				t.Fatal(err)
			}
			var digests []v1.Hash
			var img v1.Image
			for range 2 {
				img, err = Build(ctx, r, WithCacheDir(t.TempDir()), WithSourceDateEpoch(1700000000))
				if err != nil {
					t.Fatal(err)
				}
				d, err := img.Digest()
				if err != nil {
					t.Fatal(err)
				}
				digests = append(digests, d)
			}
			if digests[0] != digests[1] {
				t.Fatalf("two builds gave %s and %s", digests[0], digests[1])
			}
			checkAnnotations(t, img, tc.dir)
			checkConfig(t, img, "/"+tc.bin)
			entries := layerEntries(t, img)
			h, ok := entries[tc.bin]
			if !ok || h.Mode != 0o755 || h.Size < 500_000 || h.Uid != 0 || h.Gid != 0 || h.ModTime.Unix() != 1700000000 {
				t.Errorf("/%s in the layer: %+v", tc.bin, h)
			}
			if len(entries) != 1 {
				t.Errorf("layer holds %d entries, want 1", len(entries))
			}

			store, err := resolve.OpenStore(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			d, err := store.WriteImage(tc.ref, img)
			if err != nil || d != digests[0] {
				t.Fatalf("WriteImage = %s, %v; want %s", d, err, digests[0])
			}
			if got, ok, err := store.Lookup(tc.ref); err != nil || !ok || got != d {
				t.Errorf("Lookup(%s) = %s, %v, %v", tc.ref, got, ok, err)
			}
		})
	}
}

func checkAnnotations(t *testing.T, img v1.Image, dir string) {
	t.Helper()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	a := m.Annotations
	if a[AnnotationGoVersion] != runtime.Version() && !strings.HasPrefix(a[AnnotationGoVersion], "go1.") {
		t.Errorf("go version annotation %q", a[AnnotationGoVersion])
	}
	if a[AnnotationRecipe] != "images/"+dir+"/image.yml" || a[AnnotationTitle] != "bulkhead/"+dir ||
		a[AnnotationVersion] != "dev" || a[AnnotationCreated] != "2023-11-14T22:13:20Z" {
		t.Errorf("annotations %v", a)
	}
	var progs []GoInput
	if err := json.Unmarshal([]byte(a[AnnotationGo]), &progs); err != nil {
		t.Fatal(err)
	}
	want := GoInput{Output: "/" + dir, Package: "github.com/bulkhead-dev/bulkhead/images/" + dir,
		Module: "github.com/bulkhead-dev/bulkhead", Version: "(devel)"}
	if len(progs) != 1 || progs[0] != want {
		t.Errorf("go programs %+v, want %+v", progs, want)
	}
}

func checkConfig(t *testing.T, img v1.Image, entrypoint string) {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Created.Unix() != 1700000000 || cf.OS != "linux" || cf.Architecture != "amd64" ||
		len(cf.Config.Entrypoint) != 1 || cf.Config.Entrypoint[0] != entrypoint || len(cf.History) != 1 {
		t.Errorf("config %+v", cf)
	}
}

// layerEntries reads the image's single layer back.
func layerEntries(t *testing.T, img v1.Image) map[string]*tar.Header {
	t.Helper()
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers: %d, %v", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	out := map[string]*tar.Header{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out[h.Name] = h
	}
}

// TestBuildFiles builds a recipe of static files and config only.
func TestBuildFiles(t *testing.T) {
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "motd"), []byte("welcome\n"), 0o600))
	recipe := `name: files
tag: v1
files:
  - {path: /etc/motd, source: motd}
  - {path: /etc/app/config, contents: "a=1\n", mode: "0600"}
  - {path: /tmp, directory: true, mode: "1777"}
  - {path: /bin/sh, symlink: /bin/busybox}
config:
  cmd: [/bin/sh]
  env: [A=1]
  workdir: /srv
  labels: {org.example: x}
  linuxkit: {capabilities: [CAP_NET_ADMIN], binds: [/run:/run]}
`
	must(t, os.WriteFile(filepath.Join(dir, FileName), []byte(recipe), 0o644))
	r, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	img, err := Build(context.Background(), r, WithCacheDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	entries := layerEntries(t, img)
	names := make([]string, 0, len(entries))
	for n := range entries {
		names = append(names, n)
	}
	want := map[string]struct {
		typ  byte
		mode int64
		link string
	}{
		"bin/": {tar.TypeDir, 0o755, ""}, "bin/sh": {tar.TypeSymlink, 0o777, "/bin/busybox"},
		"etc/": {tar.TypeDir, 0o755, ""}, "etc/app/": {tar.TypeDir, 0o755, ""},
		"etc/app/config": {tar.TypeReg, 0o600, ""}, "etc/motd": {tar.TypeReg, 0o644, ""},
		"tmp/": {tar.TypeDir, 0o1777, ""},
	}
	if len(entries) != len(want) {
		t.Errorf("layer entries %q", names)
	}
	for n, w := range want {
		h := entries[n]
		if h == nil || h.Typeflag != w.typ || h.Mode != w.mode || h.Linkname != w.link || h.ModTime.Unix() != 0 || h.Uname != "" {
			t.Errorf("%s: %+v, want %+v", n, h, w)
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if got := cf.Config.Labels[LabelLinuxKit]; got != `{"binds":["/run:/run"],"capabilities":["CAP_NET_ADMIN"]}` {
		t.Errorf("linuxkit label %s", got)
	}
	if cf.Config.Labels["org.example"] != "x" || cf.Config.WorkingDir != "/srv" || cf.Config.Env[0] != "A=1" || cf.Config.Cmd[0] != "/bin/sh" {
		t.Errorf("config %+v", cf.Config)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := m.Annotations[AnnotationGoVersion]; ok {
		t.Errorf("go annotation on an image without Go programs: %v", m.Annotations)
	}
}

// TestBuildDebian fetches a small real package with apt-get download and
// takes a file from it; apt's index is the oracle for version and sha256.
func TestBuildDebian(t *testing.T) {
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, FileName), []byte("name: deb\ntag: v1\ndebian:\n  - package: netbase\n    paths: [/etc/protocols]\n"), 0o644))
	r, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	img, err := Build(context.Background(), r, WithCacheDir(cache))
	if err != nil {
		t.Fatal(err)
	}
	show, err := exec.Command("apt-cache", "show", "--no-all-versions", "netbase").Output()
	if err != nil {
		t.Fatal(err)
	}
	want := parseStanza(show)
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	var debs []DebianInput
	if err := json.Unmarshal([]byte(m.Annotations[AnnotationDebian]), &debs); err != nil {
		t.Fatal(err)
	}
	if len(debs) != 1 || debs[0] != (DebianInput{Package: "netbase", Version: want.version, Arch: "all", SHA256: want.sha256}) {
		t.Errorf("debian annotation %+v, apt-cache says %s %s", debs, want.version, want.sha256)
	}
	entries := layerEntries(t, img)
	if h := entries["etc/protocols"]; h == nil || h.Size < 1000 || h.Mode != 0o644 {
		t.Errorf("etc/protocols: %+v", h)
	}
	if len(entries) != 2 { // etc/ and etc/protocols
		t.Errorf("layer holds %d entries, want 2", len(entries))
	}
	debsInCache, _ := filepath.Glob(filepath.Join(cache, "deb", "netbase_*.deb"))
	if len(debsInCache) != 1 {
		t.Errorf("cache holds %q", debsInCache)
	}
}
