package ocispec

import (
	"io"
	"log"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/bulkhead-dev/bulkhead/builder/config"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// labelled is the org.mobyproject.config label of a LinuxKit-style image
// that carries its own settings.
const labelled = `{
  "capabilities": ["CAP_NET_ADMIN", "CAP_SYS_ADMIN"],
  "binds": ["/run:/run", "/var:/var:rshared"],
  "command": ["/usr/bin/labelled", "--from-label"],
  "net": "host",
  "pid": "host",
  "readonly": true,
  "uid": 0,
  "gid": "root",
  "additionalGids": [4, "getty"],
  "runtime": {
    "mkdir": ["/var/lib/labelled"],
    "bindNS": {"net": "/run/netns/labelled"},
    "cgroups": ["labelled"]
  }
}`

// pushAndFetch pushes an image with the label to an in-process registry
// and returns the image config as fetched back.
func pushAndFetch(t *testing.T, label string) *v1.ConfigFile {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	img, err := mutate.Config(empty.Image, v1.Config{
		Entrypoint: []string{"/bin/from-image"},
		Env:        []string{"PATH=/usr/bin:/bin", "FROM=image"},
		WorkingDir: "/srv",
		Labels:     map[string]string{config.LabelName: label},
	})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(strings.TrimPrefix(srv.URL, "http://") + "/linuxkit/labelled:v1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatalf("pushing: %v", err)
	}
	got, err := remote.Image(ref)
	if err != nil {
		t.Fatalf("pulling: %v", err)
	}
	cf, err := got.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	return cf
}

// TestLabelOnly: an entry that sets nothing but a command and one runtime
// field takes everything else from the image's label, and cwd and env from
// the image config.
func TestLabelOnly(t *testing.T) {
	cf := pushAndFetch(t, labelled)
	img := config.Image{Name: "labelled", Image: "linuxkit/labelled:v1", ImageConfig: config.ImageConfig{
		Command: &[]string{"/usr/bin/labelled", "--from-spec"},
		Runtime: &config.Runtime{Mkdir: &[]string{"/var/lib/spec"}},
	}}
	res := generate(t, img, cf)
	checkGolden(t, "label-only", res)
	if !res.Readonly {
		t.Error("the label's readonly: true did not make the root read-only")
	}
}
