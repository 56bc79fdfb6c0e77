package resolve

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// fetch copies what ref points at from its origin into the store: an image
// with all its blobs, or an index manifest alone (its platform image is
// fetched when picked). It returns the top descriptor.
func (r *Resolver) fetch(ctx context.Context, ref *reference) (v1.Descriptor, error) {
	if ref.isLayout() {
		return r.fetchLayout(ref)
	}
	if r.offline {
		return v1.Descriptor{}, fmt.Errorf("%s: %w in the image store, and resolution is offline", ref.name, ErrNotFound)
	}
	return r.fetchRegistry(ctx, ref)
}

func (r *Resolver) fetchRegistry(ctx context.Context, ref *reference) (v1.Descriptor, error) {
	opts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(r.keychain),
		remote.WithPlatform(r.platform),
		remote.WithUserAgent("bulkhead"),
	}
	if r.transport != nil {
		opts = append(opts, remote.WithTransport(r.transport))
	}
	d, err := remote.Get(ref.reg, opts...)
	if err != nil {
		return v1.Descriptor{}, registryError(ref, err)
	}
	var desc v1.Descriptor
	switch {
	case d.MediaType.IsIndex():
		idx, err := d.ImageIndex()
		if err == nil {
			desc, err = r.store.putIndex(idx)
		}
		if err != nil {
			return v1.Descriptor{}, fmt.Errorf("pulling %s: %w", ref.name, registryError(ref, err))
		}
	case d.MediaType.IsImage():
		img, err := d.Image()
		if err == nil {
			err = r.checkDeclared(img)
		}
		if err == nil {
			desc, err = r.store.putImage(img)
		}
		if err != nil {
			return v1.Descriptor{}, fmt.Errorf("pulling %s: %w", ref.name, registryError(ref, err))
		}
	default:
		return v1.Descriptor{}, fmt.Errorf("%s is a %s, not an image", ref.name, d.MediaType)
	}
	if ref.digest != nil && desc.Digest != *ref.digest {
		return v1.Descriptor{}, fmt.Errorf("pulling %s: the registry served %s: %w", ref.name, desc.Digest, ErrCorrupt)
	}
	return desc, nil
}

// registryError names the common failures plainly.
func registryError(ref *reference, err error) error {
	host := ref.reg.Context().RegistryStr()
	if host == name.DefaultRegistry {
		host = "docker.io"
	}
	var terr *transport.Error
	if errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound {
		return fmt.Errorf("%s: %w in registry %s (%w)", ref.name, ErrNotFound, host, err)
	}
	var nerr *net.OpError
	if errors.As(err, &nerr) {
		return fmt.Errorf("registry %s is unreachable: %w", host, err)
	}
	return err
}

// fetchLayout copies the image or index ref names from an OCI layout.
func (r *Resolver) fetchLayout(ref *reference) (v1.Descriptor, error) {
	p, err := layout.FromPath(ref.dir)
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("opening OCI layout %s: %w", ref.dir, err)
	}
	h, err := layoutTarget(p, ref)
	if err != nil {
		return v1.Descriptor{}, err
	}
	raw, err := p.Bytes(h)
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("OCI layout %s: %w", ref.dir, err)
	}
	mt := sniffMediaType(raw)
	if mt.IsImage() {
		if err := r.copyLayoutBlobs(p, raw); err != nil {
			return v1.Descriptor{}, fmt.Errorf("copying %s from OCI layout %s: %w", h, ref.dir, err)
		}
	}
	if err := r.store.putBlob(h, bytes.NewReader(raw)); err != nil {
		return v1.Descriptor{}, fmt.Errorf("copying %s from OCI layout %s: %w", h, ref.dir, err)
	}
	return v1.Descriptor{MediaType: mt, Size: int64(len(raw)), Digest: h}, nil
}

// layoutTarget finds the digest a layout reference names: its digest, the
// entry whose ref.name annotation is its tag, or the layout's only entry.
func layoutTarget(p layout.Path, ref *reference) (v1.Hash, error) {
	if ref.digest != nil {
		return *ref.digest, nil
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return v1.Hash{}, fmt.Errorf("OCI layout %s: %w", ref.dir, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return v1.Hash{}, fmt.Errorf("OCI layout %s: %w", ref.dir, err)
	}
	var names []string
	for _, d := range im.Manifests {
		n := d.Annotations[AnnotationRefName]
		if ref.tag != "" && (n == ref.tag || strings.HasSuffix(n, ":"+ref.tag)) {
			return d.Digest, nil
		}
		names = append(names, n)
	}
	switch {
	case ref.tag != "":
		return v1.Hash{}, fmt.Errorf("OCI layout %s: no image named %q (it has %q): %w", ref.dir, ref.tag, names, ErrNotFound)
	case len(im.Manifests) == 1:
		return im.Manifests[0].Digest, nil
	case len(im.Manifests) == 0:
		return v1.Hash{}, fmt.Errorf("OCI layout %s is empty: %w", ref.dir, ErrNotFound)
	default:
		return v1.Hash{}, fmt.Errorf("OCI layout %s holds %d images (%q); name one with :tag or @digest", ref.dir, len(im.Manifests), names)
	}
}

// copyLayoutBlobs copies an image manifest's config and layers into the
// store, verified.
func (r *Resolver) copyLayoutBlobs(p layout.Path, raw []byte) error {
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	if err := r.budget.checkDeclared(m); err != nil {
		return err
	}
	for _, d := range append([]v1.Descriptor{m.Config}, m.Layers...) {
		if r.store.hasBlob(d.Digest) {
			continue
		}
		rc, err := p.Blob(d.Digest)
		if err != nil {
			return err
		}
		err = r.store.putBlob(d.Digest, rc)
		rc.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// sniffMediaType tells an index from an image manifest, also when the
// mediaType field is missing (it is optional in OCI).
func sniffMediaType(raw []byte) types.MediaType {
	var m struct {
		MediaType types.MediaType `json:"mediaType"`
		Manifests json.RawMessage `json:"manifests"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return ""
	}
	switch {
	case m.MediaType != "":
		return m.MediaType
	case m.Manifests != nil:
		return types.OCIImageIndex
	default:
		return types.OCIManifestSchema1
	}
}

// pick chooses the platform's image from a raw index manifest.
func (r *Resolver) pick(raw []byte) (v1.Descriptor, error) {
	im, err := v1.ParseIndexManifest(bytes.NewReader(raw))
	if err != nil {
		return v1.Descriptor{}, err
	}
	var have []string
	for _, d := range im.Manifests {
		if d.Platform == nil || !d.MediaType.IsImage() {
			continue
		}
		if d.Platform.Satisfies(r.platform) {
			return d, nil
		}
		have = append(have, d.Platform.String())
	}
	if len(im.Manifests) == 1 && im.Manifests[0].Platform == nil && im.Manifests[0].MediaType.IsImage() {
		return im.Manifests[0], nil
	}
	return v1.Descriptor{}, fmt.Errorf("no image for %s (the index has %s): %w", r.platform.String(), strings.Join(have, ", "), ErrNotFound)
}
