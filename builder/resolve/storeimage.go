package resolve

import (
	"bytes"
	"fmt"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// putImage writes an image's layers, config and manifest (in that order, so
// a present manifest means a complete image) and returns its descriptor.
func (s *Store) putImage(img v1.Image) (v1.Descriptor, error) {
	digest, err := img.Digest()
	if err != nil {
		return v1.Descriptor{}, err
	}
	raw, err := img.RawManifest()
	if err != nil {
		return v1.Descriptor{}, err
	}
	mt, err := img.MediaType()
	if err != nil {
		return v1.Descriptor{}, err
	}
	desc := v1.Descriptor{MediaType: mt, Size: int64(len(raw)), Digest: digest}
	if s.hasBlob(digest) {
		return desc, nil
	}
	layers, err := img.Layers()
	if err != nil {
		return v1.Descriptor{}, err
	}
	for _, l := range layers {
		if err := s.putLayer(l); err != nil {
			return v1.Descriptor{}, err
		}
	}
	cfgName, err := img.ConfigName()
	if err != nil {
		return v1.Descriptor{}, err
	}
	cfg, err := img.RawConfigFile()
	if err != nil {
		return v1.Descriptor{}, err
	}
	if err := s.putBlob(cfgName, bytes.NewReader(cfg)); err != nil {
		return v1.Descriptor{}, fmt.Errorf("config: %w", err)
	}
	if err := s.putBlob(digest, bytes.NewReader(raw)); err != nil {
		return v1.Descriptor{}, fmt.Errorf("manifest: %w", err)
	}
	return desc, nil
}

func (s *Store) putLayer(l v1.Layer) error {
	digest, err := l.Digest()
	if err != nil {
		return err
	}
	if s.hasBlob(digest) {
		return nil
	}
	rc, err := l.Compressed()
	if err != nil {
		return fmt.Errorf("layer %s: %w", digest, err)
	}
	defer rc.Close()
	if err := s.putBlob(digest, rc); err != nil {
		return fmt.Errorf("layer %s: %w", digest, err)
	}
	return nil
}

// putIndex writes an index manifest (not its children) and returns its
// descriptor.
func (s *Store) putIndex(idx v1.ImageIndex) (v1.Descriptor, error) {
	digest, err := idx.Digest()
	if err != nil {
		return v1.Descriptor{}, err
	}
	raw, err := idx.RawManifest()
	if err != nil {
		return v1.Descriptor{}, err
	}
	mt, err := idx.MediaType()
	if err != nil {
		return v1.Descriptor{}, err
	}
	if err := s.putBlob(digest, bytes.NewReader(raw)); err != nil {
		return v1.Descriptor{}, fmt.Errorf("index: %w", err)
	}
	return v1.Descriptor{MediaType: mt, Size: int64(len(raw)), Digest: digest}, nil
}

// image opens a stored image manifest as a v1.Image whose blobs are verified
// as they are read.
func (s *Store) image(digest v1.Hash) (v1.Image, error) {
	raw, err := s.readBlob(digest)
	if err != nil {
		return nil, err
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", digest, err)
	}
	mt := m.MediaType
	if mt == "" {
		mt = types.OCIManifestSchema1
	}
	if !mt.IsImage() {
		return nil, fmt.Errorf("manifest %s is a %s, not an image", digest, mt)
	}
	return partial.CompressedToImage(&storeImage{s: s, raw: raw, m: m, mt: mt})
}

// storeImage is partial.CompressedImageCore over the store.
type storeImage struct {
	s   *Store
	raw []byte
	m   *v1.Manifest
	mt  types.MediaType
}

func (i *storeImage) RawManifest() ([]byte, error)        { return i.raw, nil }
func (i *storeImage) MediaType() (types.MediaType, error) { return i.mt, nil }
func (i *storeImage) RawConfigFile() ([]byte, error)      { return i.s.readBlob(i.m.Config.Digest) }

func (i *storeImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if h == i.m.Config.Digest {
		return &storeBlob{s: i.s, desc: i.m.Config}, nil
	}
	for _, l := range i.m.Layers {
		if l.Digest == h {
			return &storeBlob{s: i.s, desc: l}, nil
		}
	}
	return nil, fmt.Errorf("blob %s is not part of the image", h)
}

// storeBlob is partial.CompressedLayer over a stored blob.
type storeBlob struct {
	s    *Store
	desc v1.Descriptor
}

func (b *storeBlob) Digest() (v1.Hash, error)            { return b.desc.Digest, nil }
func (b *storeBlob) Size() (int64, error)                { return b.desc.Size, nil }
func (b *storeBlob) MediaType() (types.MediaType, error) { return b.desc.MediaType, nil }
func (b *storeBlob) Compressed() (io.ReadCloser, error)  { return b.s.openBlob(b.desc.Digest) }
