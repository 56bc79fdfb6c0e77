package publish

import (
	"context"
	"fmt"
	"os"
	"slices"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/bulkhead-dev/bulkhead/internal/update"
	"github.com/bulkhead-dev/bulkhead/internal/update/chunk"
	"github.com/bulkhead-dev/bulkhead/internal/update/pull"
)

// Pushed names what Push wrote.
type Pushed struct {
	// Digest is the artifact's manifest digest; Signature the reference
	// of its signature (the sha256-<hex>.sig tag).
	Digest    v1.Hash
	Signature name.Reference
}

// Image is the artifact of a as an OCI image manifest: config of type
// pull.ArtifactType, then the layers pull reads (the signed manifest, the
// chunk index, the packs).
func Image(a *Artifact) (v1.Image, error) {
	ib, err := a.Index.Marshal()
	if err != nil {
		return nil, err
	}
	layers := []v1.Layer{
		static.NewLayer(a.ManifestJSON, types.MediaType(update.PayloadType)),
		static.NewLayer(ib, types.MediaType(chunk.IndexMediaType)),
	}
	for _, p := range append(slices.Clone(a.Packs), a.DeltaPacks...) {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("reading pack: %w", err)
		}
		layers = append(layers, static.NewLayer(b, pull.PackMediaType))
	}
	base := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	base = mutate.ConfigMediaType(base, pull.ArtifactType)
	img, err := mutate.AppendLayers(base, layers...)
	if err != nil {
		return nil, fmt.Errorf("assembling update artifact: %w", err)
	}
	anns := map[string]string{
		"org.opencontainers.image.title":   a.Manifest.Host,
		"org.opencontainers.image.version": a.Manifest.Version,
	}
	return mutate.Annotations(img, anns).(v1.Image), nil
}

// SignatureImage is the cosign-style signature of the artifact whose
// manifest is desc, with desc as subject: the DSSE envelopes of prev (the
// signature image already at the tag, or nil), then a's unless prev has
// it, as cosign appends a signature to those already there.
func SignatureImage(a *Artifact, desc v1.Descriptor, prev v1.Image) (v1.Image, error) {
	base := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	base = mutate.ConfigMediaType(base, pull.SignatureArtifactType)
	layers, err := previousEnvelopes(prev, static.NewLayer(a.Envelope, pull.EnvelopeMediaType))
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(base, layers...)
	if err != nil {
		return nil, fmt.Errorf("assembling signature: %w", err)
	}
	return mutate.Subject(img, desc).(v1.Image), nil
}

// SignatureTag is where cosign's convention keeps the signature of the
// manifest with digest d: the tag sha256-<hex>.sig.
func SignatureTag(repo name.Repository, d v1.Hash) name.Tag {
	return repo.Tag(pull.SignatureTag(d.String()))
}

// Push writes a to ref and its signature beside it.
func Push(ctx context.Context, a *Artifact, ref name.Reference, opts ...remote.Option) (*Pushed, error) {
	opts = append([]remote.Option{remote.WithContext(ctx)}, opts...)
	img, err := Image(a)
	if err != nil {
		return nil, err
	}
	if err := remote.Write(ref, img, opts...); err != nil {
		return nil, fmt.Errorf("pushing update to %s: %w", ref, err)
	}
	desc, err := descriptor(img)
	if err != nil {
		return nil, err
	}
	tag := SignatureTag(ref.Context(), desc.Digest)
	prev, err := remote.Image(tag, opts...)
	if err != nil {
		prev = nil // no signature yet
	}
	sig, err := SignatureImage(a, desc, prev)
	if err != nil {
		return nil, err
	}
	if err := remote.Write(tag, sig, opts...); err != nil {
		return nil, fmt.Errorf("pushing signature to %s: %w", tag, err)
	}
	return &Pushed{Digest: desc.Digest, Signature: tag}, nil
}

func descriptor(img v1.Image) (v1.Descriptor, error) {
	d, err := img.Digest()
	if err != nil {
		return v1.Descriptor{}, err
	}
	n, err := img.Size()
	if err != nil {
		return v1.Descriptor{}, err
	}
	mt, err := img.MediaType()
	if err != nil {
		return v1.Descriptor{}, err
	}
	return v1.Descriptor{MediaType: mt, Digest: d, Size: n, ArtifactType: string(pull.ArtifactType)}, nil
}

// previousEnvelopes lists prev's envelope layers followed by l, unless
// prev holds l already.
func previousEnvelopes(prev v1.Image, l v1.Layer) ([]v1.Layer, error) {
	if prev == nil {
		return []v1.Layer{l}, nil
	}
	old, err := prev.Layers()
	if err != nil {
		return nil, fmt.Errorf("reading the signatures already pushed: %w", err)
	}
	want, _ := l.Digest()
	var out []v1.Layer
	for _, o := range old {
		mt, _ := o.MediaType()
		if string(mt) != pull.EnvelopeMediaType {
			continue
		}
		if d, _ := o.Digest(); d == want {
			return old, nil
		}
		out = append(out, o)
	}
	if len(out) >= pull.MaxSignatures {
		return nil, fmt.Errorf("%d signatures already pushed, at most %d", len(out), pull.MaxSignatures)
	}
	return append(out, l), nil
}
