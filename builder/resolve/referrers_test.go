package resolve

import (
	"encoding/json"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func TestReferrers(t *testing.T) {
	s, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	subject := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("a", 64)}
	cfg, layer := []byte("{}"), []byte(`{"bundle":true}`)
	desc := func(mt string, b []byte) v1.Descriptor {
		h, n, _ := v1.SHA256(strings.NewReader(string(b)))
		return v1.Descriptor{MediaType: types.MediaType(mt), Size: n, Digest: h}
	}
	m := v1.Manifest{
		SchemaVersion: 2, MediaType: types.OCIManifestSchema1, ArtifactType: "application/x-test",
		Config: desc("application/vnd.oci.empty.v1+json", cfg), Layers: []v1.Descriptor{desc("application/x-test", layer)},
		Subject: &v1.Descriptor{MediaType: types.OCIManifestSchema1, Size: 1, Digest: subject},
	}
	raw, _ := json.Marshal(m)
	blobs := map[v1.Hash][]byte{m.Config.Digest: cfg, m.Layers[0].Digest: layer}

	if got, err := s.Referrers(subject); err != nil || len(got) != 0 {
		t.Fatalf("before: %v, %v", got, err)
	}
	other := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("b", 64)}
	if _, err := s.PutReferrer(other, raw, blobs); err == nil {
		t.Error("stored a referrer under a subject its manifest does not name")
	}
	bad := map[v1.Hash][]byte{m.Config.Digest: cfg, m.Layers[0].Digest: []byte("tampered")}
	if _, err := s.PutReferrer(subject, raw, bad); err == nil {
		t.Error("stored a blob that does not match its digest")
	}
	d, err := s.PutReferrer(subject, raw, blobs)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Referrers(subject)
	if err != nil || len(got) != 1 || got[0].Digest != d.Digest || got[0].ArtifactType != "application/x-test" {
		t.Fatalf("referrers %+v, %v", got, err)
	}
	if b, err := s.Blob(m.Layers[0].Digest); err != nil || string(b) != string(layer) {
		t.Fatalf("blob %q, %v", b, err)
	}
	if got, _ := s.Referrers(other); len(got) != 0 {
		t.Errorf("another subject has referrers %v", got)
	}
}
