package resolve

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Referrers in the store: artifacts (signatures, attestations) whose
// manifest names a stored image as its subject. Their manifests and blobs
// live in blobs/ like any other; referrers/sha256/<subject hex>/<manifest
// hex> holds each one's descriptor (with its artifactType), so they can be
// listed the way a registry's referrers API lists them.

// PutReferrer stores an artifact that refers to subject: its blobs (config
// and layers, each verified against its digest) and its raw manifest, whose
// subject field must name subject. It returns the manifest's descriptor.
func (s *Store) PutReferrer(subject v1.Hash, manifest []byte, blobs map[v1.Hash][]byte) (v1.Descriptor, error) {
	m, err := v1.ParseManifest(bytes.NewReader(manifest))
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("storing referrer: %w", err)
	}
	if m.Subject == nil || m.Subject.Digest != subject {
		return v1.Descriptor{}, fmt.Errorf("storing referrer: its manifest does not name %s as its subject", subject)
	}
	for _, d := range append([]v1.Descriptor{m.Config}, m.Layers...) {
		b, ok := blobs[d.Digest]
		if !ok && !s.hasBlob(d.Digest) {
			return v1.Descriptor{}, fmt.Errorf("storing referrer: blob %s not given", d.Digest)
		}
		if ok {
			if err := s.putBlob(d.Digest, bytes.NewReader(b)); err != nil {
				return v1.Descriptor{}, fmt.Errorf("storing referrer: %w", err)
			}
		}
	}
	h, size, err := v1.SHA256(bytes.NewReader(manifest))
	if err != nil {
		return v1.Descriptor{}, err
	}
	if err := s.putBlob(h, bytes.NewReader(manifest)); err != nil {
		return v1.Descriptor{}, fmt.Errorf("storing referrer: %w", err)
	}
	desc := v1.Descriptor{MediaType: m.MediaType, Size: size, Digest: h, ArtifactType: m.ArtifactType, Annotations: m.Annotations}
	if desc.ArtifactType == "" {
		desc.ArtifactType = string(m.Config.MediaType)
	}
	b, err := json.Marshal(desc)
	if err != nil {
		return v1.Descriptor{}, err
	}
	dir := s.path("referrers", subject.Algorithm, subject.Hex)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return v1.Descriptor{}, fmt.Errorf("storing referrer: %w", err)
	}
	if err := writeFileAtomic(s.path("referrers", subject.Algorithm, subject.Hex, h.Hex), b); err != nil {
		return v1.Descriptor{}, fmt.Errorf("storing referrer: %w", err)
	}
	return desc, nil
}

// Referrers lists the descriptors of the stored artifacts that refer to
// subject, sorted by digest.
func (s *Store) Referrers(subject v1.Hash) ([]v1.Descriptor, error) {
	dir := s.path("referrers", subject.Algorithm, subject.Hex)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing referrers of %s: %w", subject, err)
	}
	var out []v1.Descriptor
	for _, e := range entries {
		if e.Name()[0] == '.' {
			continue
		}
		b, err := os.ReadFile(s.path("referrers", subject.Algorithm, subject.Hex, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("listing referrers of %s: %w", subject, err)
		}
		var d v1.Descriptor
		if err := json.Unmarshal(b, &d); err != nil {
			return nil, fmt.Errorf("listing referrers of %s: %s: %w", subject, e.Name(), err)
		}
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Digest.Hex < out[j].Digest.Hex })
	return out, nil
}

// Blob reads a whole (small) stored blob, verified against its digest.
func (s *Store) Blob(h v1.Hash) ([]byte, error) {
	b, err := s.readBlob(h)
	if err != nil {
		return nil, fmt.Errorf("reading blob %s from the store: %w", h, err)
	}
	return b, nil
}
