package recipe

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// fakeKernelBuild is a kernel build script that writes the layout
// kernel/build writes, into a directory of the test, and counts its runs.
const fakeKernelBuild = `#!/bin/sh
set -e
out="$OUT"
echo run >>"$out.runs"
mkdir -p "$out/modules"
printf 'bzImage' >"$out/kernel"
printf 'CONFIG_MODULES=y\n' >"$out/kernel.config"
echo 6.1.0-test >"$out/release"
printf 'kernel/fs/ext4/ext4.ko\n' >"$out/modules/modules.builtin"
: >"$out/modules/modules.dep"
printf '{"package": "linux-source-6.1", "version": "6.1.1-1", "epoch": %s}\n' "$SOURCE_DATE_EPOCH" >"$out/source.json"
echo "building..." >&2
echo "$out"
`

func TestBuildKernelFromScript(t *testing.T) {
	mod := t.TempDir()
	out := filepath.Join(t.TempDir(), "k")
	t.Setenv("OUT", out)
	must(t, os.WriteFile(filepath.Join(mod, "go.mod"), []byte("module example.com/k\n\ngo 1.22\n"), 0o644))
	must(t, os.MkdirAll(filepath.Join(mod, "kernel"), 0o755))
	must(t, os.WriteFile(filepath.Join(mod, "kernel", "build"), []byte(fakeKernelBuild), 0o755))
	must(t, os.MkdirAll(filepath.Join(mod, "images", "k"), 0o755))
	must(t, os.WriteFile(filepath.Join(mod, "images", "k", FileName), []byte("name: kernel\ntag: t\nkernel:\n  build: ./kernel/build\n"), 0o644))
	r, err := Load(filepath.Join(mod, "images", "k"))
	if err != nil {
		t.Fatal(err)
	}
	var digests []string
	for range 2 {
		img, err := Build(context.Background(), r, WithCacheDir(t.TempDir()), WithSourceDateEpoch(1700000000))
		if err != nil {
			t.Fatal(err)
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, d.String())
		entries := layerEntries(t, img)
		for _, f := range []string{KernelFile, KernelConfig, KernelTar} {
			if h := entries[f]; h == nil || h.Mode != 0o644 {
				t.Errorf("%s in the layer: %+v", f, h)
			}
		}
		m, err := img.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{
			AnnotationKernel:        "6.1.0-test",
			AnnotationKernelModules: "[]",
			AnnotationKernelSource:  `{"package":"linux-source-6.1","version":"6.1.1-1","epoch":1700000000}`,
			AnnotationRecipe:        "images/k/image.yml",
		}
		for k, v := range want {
			if got := m.Annotations[k]; got != v {
				t.Errorf("annotation %s = %q, want %q", k, got, v)
			}
		}
		tarEntries := nestedTar(t, layerFile(t, img, KernelTar))
		if got, want := strings.Join(tarEntries, " "), "lib/ lib/modules/ lib/modules/6.1.0-test/ lib/modules/6.1.0-test/modules.builtin lib/modules/6.1.0-test/modules.dep"; got != want {
			t.Errorf("kernel.tar holds %s, want %s", got, want)
		}
	}
	if digests[0] != digests[1] {
		t.Errorf("two builds gave %s and %s", digests[0], digests[1])
	}
	runs, err := os.ReadFile(out + ".runs")
	if err != nil || strings.Count(string(runs), "run") != 2 {
		t.Errorf("script ran %q, %v; want twice (the script keeps its own cache)", runs, err)
	}
}

func TestParseKernelBuild(t *testing.T) {
	for _, tc := range []struct{ yaml, err string }{
		{"kernel:\n  build: ./kernel/build\n", ""},
		{"kernel:\n  build: ./kernel/build\n  package: linux-image-amd64\n", "build takes no package"},
		{"kernel:\n  build: ../kernel/build\n", "must be a path inside this module"},
		{"kernel:\n  build: kernel/build\n", "must be a path inside this module"},
		{"kernel:\n  build: ./a/../../b\n", "must be a path inside this module"},
	} {
		_, err := Parse("r.yml", []byte("name: k\ntag: t\n"+tc.yaml))
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%q: error %v, want %q", tc.yaml, err, tc.err)
		}
	}
}

// layerFile returns the contents of file name in img's single layer.
func layerFile(t *testing.T, img v1.Image, name string) []byte {
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
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("%s in the layer: %v", name, err)
		}
		if h.Name == name {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
	}
}

func nestedTar(t *testing.T, b []byte) []string {
	t.Helper()
	var names []string
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
}
