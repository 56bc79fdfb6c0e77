package main

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/bulkhead-dev/bulkhead/builder/resolve"
)

// layoutImage writes a one-layer linux/amd64 image of files into the OCI
// layout at dir, tagged tag when not empty.
func layoutImage(t *testing.T, dir, tag string, files ...tarFile) {
	t.Helper()
	data := tarBytes(t, files...)
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	var opts []layout.Option
	if tag != "" {
		opts = append(opts, layout.WithAnnotations(map[string]string{resolve.AnnotationRefName: tag}))
	}
	if err := p.AppendImage(img, opts...); err != nil {
		t.Fatal(err)
	}
}

// oci: references work as the README documents: relative to the spec
// (not the working directory), with a tag.
func TestLayoutReferencesRelativeToSpec(t *testing.T) {
	root := t.TempDir()
	specDir := filepath.Join(root, "hosts")
	layoutImage(t, filepath.Join(specDir, "img", "init"), "", tarFile{"init", "#!init", 0o755})
	layoutImage(t, filepath.Join(specDir, "x"), "v1", tarFile{"web", "web v1", 0o755})
	layoutImage(t, filepath.Join(root, "common"), "", tarFile{"tool", "tool", 0o755})
	spec := filepath.Join(specDir, "host.yml")
	data := `init:
  - oci:img/init
  - oci:../common
services:
  - name: web
    image: oci:./x:v1
  - name: web2
    image: oci:x:v1
`
	if err := os.WriteFile(spec, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	var so, se bytes.Buffer
	if code := run(context.Background(), []string{"validate", spec}, &so, &se); code != 0 {
		t.Fatalf("validate: exit %d: %s", code, se.String())
	}
	out := t.TempDir()
	if se, code := buildInto(context.Background(), t, out, spec, "--name", "host", "--format", "tar"); code != 0 {
		t.Fatalf("build: exit %d: %s", code, se)
	}
	// Not read-only: the roots are unpacked as lower/ (one image, unpacked once).
	for _, want := range []string{"init", "tool", "containers/services/web/lower/web"} {
		if !tarHas(t, filepath.Join(out, "host.tar"), want) {
			t.Errorf("host.tar has no %s", want)
		}
	}
}

// tarHas reports whether the tar at p holds name.
func tarHas(t *testing.T, p, name string) bool {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return false
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimPrefix(hdr.Name, "./") == name {
			return true
		}
	}
}
