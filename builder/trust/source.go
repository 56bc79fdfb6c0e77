package trust

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/bulkhead-dev/bulkhead/builder/resolve"
	"github.com/bulkhead-dev/bulkhead/builder/sign"
)

// maxSignatureSize bounds a signature manifest or blob read from anywhere.
const maxSignatureSize = 4 << 20

// Signature is one signature found for an image: a Sigstore bundle, or a
// simple-signing payload with its signature (the older .sig form).
type Signature struct {
	Origin  string // where it was found, for messages
	Bundle  []byte
	Payload []byte
	Sig     []byte
}

// Source finds the signatures attached to an image. It also says where it
// looked, for the "no signature" message.
type Source interface {
	Signatures(ctx context.Context, img *resolve.Image) (sigs []Signature, looked []string, err error)
}

// StoreSource finds bundles stored as referrers in the local store.
type StoreSource struct{ Store *resolve.Store }

// Signatures implements Source.
func (s StoreSource) Signatures(_ context.Context, img *resolve.Image) ([]Signature, []string, error) {
	looked := []string{"the store's referrers"}
	descs, err := s.Store.Referrers(img.Digest)
	if err != nil {
		return nil, looked, err
	}
	var out []Signature
	for _, d := range descs {
		if !mayHoldBundle(d) {
			continue
		}
		raw, err := s.Store.Blob(d.Digest)
		if err != nil {
			return nil, looked, err
		}
		m, err := v1.ParseManifest(bytes.NewReader(raw))
		if err != nil {
			return nil, looked, fmt.Errorf("referrer %s: %w", d.Digest, err)
		}
		for _, l := range m.Layers {
			if l.MediaType != sign.BundleMediaType {
				continue
			}
			b, err := s.Store.Blob(l.Digest)
			if err != nil {
				return nil, looked, err
			}
			out = append(out, Signature{Origin: "store referrer " + d.Digest.String(), Bundle: b})
		}
	}
	return out, looked, nil
}

// RegistrySource finds signatures in the image's registry: bundles through
// the referrers API (or its sha256-<digest> tag fallback), and the
// sha256-<digest>.sig tag. Layout (oci:) images have none there.
type RegistrySource struct {
	Options  []remote.Option
	Insecure map[string]bool // registries reached over plain HTTP
	// Cache, if set, keeps the bundles found as referrers in the store, so
	// an offline build can check them later.
	Cache *resolve.Store
}

// Signatures implements Source.
func (r RegistrySource) Signatures(ctx context.Context, img *resolve.Image) ([]Signature, []string, error) {
	if strings.HasPrefix(img.Name, resolve.LayoutPrefix) {
		return nil, nil, nil
	}
	repo, err := r.repository(img.Name)
	if err != nil {
		return nil, nil, err
	}
	d := repo.Digest(img.Digest.String())
	fallback := sign.FallbackTag(img.Digest.String())
	legacy := sign.LegacyTag(img.Digest.String())
	looked := []string{"referrers", "tag " + fallback, "tag " + legacy}
	opts := append([]remote.Option{remote.WithContext(ctx)}, r.Options...)
	bundles, err := r.bundles(d, img.Digest, opts)
	if err != nil {
		return nil, looked, err
	}
	old, err := r.legacy(repo.Tag(legacy), opts)
	if err != nil {
		return nil, looked, err
	}
	return append(bundles, old...), looked, nil
}

func (r RegistrySource) repository(s string) (name.Repository, error) {
	var opts []name.Option
	if ref, err := name.ParseReference(s); err == nil && r.Insecure[ref.Context().RegistryStr()] {
		opts = append(opts, name.Insecure)
	}
	ref, err := name.ParseReference(s, opts...)
	if err != nil {
		return name.Repository{}, fmt.Errorf("parsing %s: %w", s, err)
	}
	return ref.Context(), nil
}

// bundles lists the bundle referrers of d and reads their bundles.
func (r RegistrySource) bundles(d name.Digest, subject v1.Hash, opts []remote.Option) ([]Signature, error) {
	idx, err := remote.Referrers(d, opts...)
	if err != nil {
		return nil, fmt.Errorf("listing referrers of %s: %w", d, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("listing referrers of %s: %w", d, err)
	}
	var out []Signature
	for _, desc := range im.Manifests {
		if !mayHoldBundle(desc) {
			continue
		}
		raw, m, err := fetchManifest(d.Context().Digest(desc.Digest.String()), opts)
		if err != nil {
			return nil, err
		}
		blobs := map[v1.Hash][]byte{}
		for _, l := range m.Layers {
			if l.MediaType != sign.BundleMediaType {
				continue
			}
			b, err := fetchBlob(d.Context(), l, opts)
			if err != nil {
				return nil, err
			}
			blobs[l.Digest] = b
			out = append(out, Signature{Origin: "referrer " + desc.Digest.String(), Bundle: b})
		}
		if len(blobs) > 0 && len(blobs) == len(m.Layers) && r.Cache != nil {
			if err := r.cache(d.Context(), subject, raw, m, blobs, opts); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// cache stores a bundle referrer in the store.
func (r RegistrySource) cache(repo name.Repository, subject v1.Hash, raw []byte, m *v1.Manifest, blobs map[v1.Hash][]byte, opts []remote.Option) error {
	if m.Subject == nil || m.Subject.Digest != subject {
		return nil // listed by the registry, but not about this image
	}
	cfg, err := fetchBlob(repo, m.Config, opts)
	if err != nil {
		return err
	}
	blobs[m.Config.Digest] = cfg
	if _, err := r.Cache.PutReferrer(subject, raw, blobs); err != nil {
		return fmt.Errorf("caching signature: %w", err)
	}
	return nil
}

// legacy reads the simple-signing signatures under the .sig tag.
func (r RegistrySource) legacy(tag name.Tag, opts []remote.Option) ([]Signature, error) {
	_, m, err := fetchManifest(tag, opts)
	var terr *transport.Error
	if errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Signature
	for _, l := range m.Layers {
		if l.MediaType != sign.SimpleSigningMediaType {
			continue
		}
		sig, err := base64.StdEncoding.DecodeString(l.Annotations[sign.SignatureAnnotation])
		if err != nil {
			return nil, fmt.Errorf("%s: signature annotation: %w", tag, err)
		}
		payload, err := fetchBlob(tag.Context(), l, opts)
		if err != nil {
			return nil, err
		}
		out = append(out, Signature{Origin: "tag " + tag.TagStr(), Payload: payload, Sig: sig})
	}
	return out, nil
}

func fetchManifest(ref name.Reference, opts []remote.Option) ([]byte, *v1.Manifest, error) {
	desc, err := remote.Get(ref, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("fetching %s: %w", ref, err)
	}
	if len(desc.Manifest) > maxSignatureSize {
		return nil, nil, fmt.Errorf("fetching %s: manifest too large", ref)
	}
	m, err := v1.ParseManifest(bytes.NewReader(desc.Manifest))
	if err != nil {
		return nil, nil, fmt.Errorf("fetching %s: %w", ref, err)
	}
	return desc.Manifest, m, nil
}

// fetchBlob reads a small blob and checks it against its descriptor.
func fetchBlob(repo name.Repository, d v1.Descriptor, opts []remote.Option) ([]byte, error) {
	if d.Size > maxSignatureSize {
		return nil, fmt.Errorf("blob %s too large (%d bytes)", d.Digest, d.Size)
	}
	l, err := remote.Layer(repo.Digest(d.Digest.String()), opts...)
	if err != nil {
		return nil, fmt.Errorf("fetching blob %s: %w", d.Digest, err)
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, fmt.Errorf("fetching blob %s: %w", d.Digest, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxSignatureSize+1))
	if err != nil {
		return nil, fmt.Errorf("fetching blob %s: %w", d.Digest, err)
	}
	if h, _, _ := v1.SHA256(bytes.NewReader(b)); h != d.Digest {
		return nil, fmt.Errorf("fetching blob %s: %w", d.Digest, resolve.ErrCorrupt)
	}
	return b, nil
}

// mayHoldBundle reports whether a referrer may be a bundle. The referrers
// API should report a manifest's artifactType, but some registries report
// its config's media type (the OCI empty type, for cosign's bundles); the
// manifest's layers decide.
func mayHoldBundle(d v1.Descriptor) bool {
	switch d.ArtifactType {
	case sign.BundleMediaType, sign.EmptyMediaType, "":
		return true
	}
	return false
}
