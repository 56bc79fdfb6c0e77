package sign

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/bulkhead-dev/bulkhead/builder/resolve"
)

// Image signature formats, as cosign writes them.
const (
	// CosignPredicateType is the predicate of the in-toto statement a
	// bundle signature of an image carries.
	CosignPredicateType = "https://sigstore.dev/cosign/sign/v1"
	// SimpleSigningMediaType is the layer type of the older .sig form.
	SimpleSigningMediaType = "application/vnd.dev.cosign.simplesigning.v1+json"
	// SignatureAnnotation holds a .sig layer's base64 signature.
	SignatureAnnotation = "dev.cosignproject.cosign/signature"
	// EmptyMediaType is the OCI empty descriptor's type ("{}").
	EmptyMediaType = "application/vnd.oci.empty.v1+json"
)

var emptyConfig = []byte("{}")

// ImageStatement is the in-toto statement that signs an image: its
// repository as the subject name, its manifest digest as the subject digest.
func ImageStatement(repo string, digest v1.Hash) ([]byte, error) {
	st := Statement{
		Type:          StatementType,
		Subject:       []ResourceDescriptor{{Name: repo, Digest: map[string]string{digest.Algorithm: digest.Hex}}},
		PredicateType: CosignPredicateType,
		Predicate:     json.RawMessage("{}"),
	}
	b, err := json.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("encoding image statement: %w", err)
	}
	return b, nil
}

// SignImage signs the image with manifest digest in repository repo and
// returns a Sigstore bundle (JSON) holding a DSSE in-toto statement.
func SignImage(ctx context.Context, key *PrivateKey, repo string, digest v1.Hash) ([]byte, error) {
	st, err := ImageStatement(repo, digest)
	if err != nil {
		return nil, err
	}
	b, err := SignDSSE(ctx, key, InTotoPayloadType, st)
	if err != nil {
		return nil, fmt.Errorf("signing image %s@%s: %w", repo, digest, err)
	}
	return b, nil
}

// Referrer is an artifact manifest and its blobs.
type Referrer struct {
	Manifest []byte
	Blobs    map[v1.Hash][]byte
}

// BundleReferrer wraps a bundle in an OCI artifact manifest whose subject is
// the signed image, as cosign attaches bundles.
func BundleReferrer(subject v1.Descriptor, bundleJSON []byte) (*Referrer, error) {
	cfg := blobDescriptor(EmptyMediaType, emptyConfig)
	layer := blobDescriptor(BundleMediaType, bundleJSON)
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  BundleMediaType,
		Config:        cfg,
		Layers:        []v1.Descriptor{layer},
		Subject:       &v1.Descriptor{MediaType: subject.MediaType, Size: subject.Size, Digest: subject.Digest},
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encoding referrer manifest: %w", err)
	}
	return &Referrer{Manifest: raw, Blobs: map[v1.Hash][]byte{cfg.Digest: emptyConfig, layer.Digest: bundleJSON}}, nil
}

func blobDescriptor(mt types.MediaType, b []byte) v1.Descriptor {
	h, n, _ := v1.SHA256(bytes.NewReader(b)) // reading memory cannot fail
	return v1.Descriptor{MediaType: mt, Size: n, Digest: h}
}

// rawManifest is a remote.Taggable over bytes.
type rawManifest struct {
	raw []byte
	mt  types.MediaType
}

func (r rawManifest) RawManifest() ([]byte, error)        { return r.raw, nil }
func (r rawManifest) MediaType() (types.MediaType, error) { return r.mt, nil }

// Push writes the referrer to the repository of subject. go-containerregistry
// updates the sha256-<digest> fallback tag when the registry has no
// referrers API.
func (r *Referrer) Push(ctx context.Context, repo name.Repository, opts ...remote.Option) error {
	opts = append([]remote.Option{remote.WithContext(ctx)}, opts...)
	for h, b := range r.Blobs {
		l := static.NewLayer(b, types.MediaType("application/octet-stream"))
		if err := remote.WriteLayer(repo, l, opts...); err != nil {
			return fmt.Errorf("pushing blob %s: %w", h, err)
		}
	}
	h, _, err := v1.SHA256(bytes.NewReader(r.Manifest))
	if err != nil {
		return err
	}
	if err := remote.Put(repo.Digest(h.String()), rawManifest{r.Manifest, types.OCIManifestSchema1}, opts...); err != nil {
		return fmt.Errorf("pushing referrer %s: %w", h, err)
	}
	return nil
}

// Store writes the referrer into a local store, next to its subject.
func (r *Referrer) Store(s *resolve.Store, subject v1.Hash) error {
	_, err := s.PutReferrer(subject, r.Manifest, r.Blobs)
	return err
}

// SignImageInStore signs a stored image and attaches the bundle to it in
// the store, so a trust policy can check it like a registry image.
func SignImageInStore(ctx context.Context, key *PrivateKey, s *resolve.Store, repo string, digest v1.Hash) error {
	img, err := s.Image(digest)
	if err != nil {
		return err
	}
	desc, err := partial.Descriptor(img)
	if err != nil {
		return err
	}
	b, err := SignImage(ctx, key, repo, digest)
	if err != nil {
		return err
	}
	ref, err := BundleReferrer(*desc, b)
	if err != nil {
		return err
	}
	return ref.Store(s, digest)
}

// SignImageRemote signs the image ref names in its registry and attaches
// the bundle as a referrer.
func SignImageRemote(ctx context.Context, key *PrivateKey, ref name.Digest, opts ...remote.Option) error {
	opts = append([]remote.Option{remote.WithContext(ctx)}, opts...)
	desc, err := remote.Head(ref, opts...)
	if err != nil {
		return fmt.Errorf("signing %s: %w", ref, err)
	}
	b, err := SignImage(ctx, key, ref.Context().Name(), desc.Digest)
	if err != nil {
		return err
	}
	r, err := BundleReferrer(*desc, b)
	if err != nil {
		return err
	}
	return r.Push(ctx, ref.Context(), opts...)
}

// SimpleSigningPayload is the payload the older cosign signature form signs.
func SimpleSigningPayload(dockerRef string, digest v1.Hash) []byte {
	type critical struct {
		Identity struct {
			DockerReference string `json:"docker-reference"`
		} `json:"identity"`
		Image struct {
			DockerManifestDigest string `json:"docker-manifest-digest"`
		} `json:"image"`
		Type string `json:"type"`
	}
	var c critical
	c.Identity.DockerReference = dockerRef
	c.Image.DockerManifestDigest = digest.String()
	c.Type = "cosign container image signature"
	// Plain strings always encode.
	b, _ := json.Marshal(struct {
		Critical critical `json:"critical"`
		Optional any      `json:"optional"`
	}{Critical: c})
	return b
}

// SignImageLegacy signs the image ref names in the older cosign form: a
// simple-signing payload in a manifest tagged sha256-<digest>.sig.
func SignImageLegacy(ctx context.Context, key *PrivateKey, ref name.Digest, opts ...remote.Option) error {
	h, err := v1.NewHash(ref.DigestStr())
	if err != nil {
		return err
	}
	payload := SimpleSigningPayload(ref.Context().Name(), h)
	sig, _, err := key.SignData(ctx, payload)
	if err != nil {
		return err
	}
	return PushLegacySignature(ctx, ref, payload, sig, opts...)
}

// PushLegacySignature pushes a signature in the .sig tag form for ref.
func PushLegacySignature(ctx context.Context, ref name.Digest, payload, sig []byte, opts ...remote.Option) error {
	opts = append([]remote.Option{remote.WithContext(ctx)}, opts...)
	cfg := blobDescriptor(EmptyMediaType, emptyConfig)
	layer := blobDescriptor(SimpleSigningMediaType, payload)
	layer.Annotations = map[string]string{SignatureAnnotation: base64.StdEncoding.EncodeToString(sig)}
	m := v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1, Config: cfg, Layers: []v1.Descriptor{layer}}
	raw, err := json.Marshal(m)
	if err != nil {
		return err
	}
	r := &Referrer{Manifest: raw, Blobs: map[v1.Hash][]byte{cfg.Digest: emptyConfig, layer.Digest: payload}}
	for h, b := range r.Blobs {
		if err := remote.WriteLayer(ref.Context(), static.NewLayer(b, types.MediaType("application/octet-stream")), opts...); err != nil {
			return fmt.Errorf("pushing blob %s: %w", h, err)
		}
	}
	tag := ref.Context().Tag(LegacyTag(ref.DigestStr()))
	if err := remote.Put(tag, rawManifest{raw, types.OCIManifestSchema1}, opts...); err != nil {
		return fmt.Errorf("pushing signature %s: %w", tag, err)
	}
	return nil
}

// LegacyTag is the tag of the older cosign signature form for an image
// digest: sha256-<hex>.sig.
func LegacyTag(digest string) string {
	return FallbackTag(digest) + ".sig"
}

// FallbackTag is the referrers tag schema's tag for a digest: sha256-<hex>.
func FallbackTag(digest string) string {
	return strings.Replace(digest, ":", "-", 1)
}

// SignStoredImage signs the image the store records under name (as given
// to Store.WriteImage) and attaches the bundle to it in the store: what a
// component recipe calls after writing its image when given a key.
func SignStoredImage(ctx context.Context, key *PrivateKey, s *resolve.Store, imageName string) error {
	digest, ok, err := s.Lookup(imageName)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("signing %s: %w in the store", imageName, resolve.ErrNotFound)
	}
	repo := imageName
	if ref, err := name.ParseReference(imageName); err == nil {
		repo = ref.Context().Name()
		if reg := ref.Context().RegistryStr(); reg == name.DefaultRegistry {
			repo = "docker.io/" + ref.Context().RepositoryStr()
		}
	}
	return SignImageInStore(ctx, key, s, repo, digest)
}
