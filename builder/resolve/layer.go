package resolve

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/zstd"
)

// loadImage builds the resolved view of a stored image manifest: its config,
// and every layer verified and available uncompressed, within the budget
// (nil: no limits).
func (s *Store) loadImage(ctx context.Context, digest v1.Hash, b *budget) (*Image, error) {
	raw, err := s.readBlob(digest)
	if err != nil {
		return nil, err
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", digest, err)
	}
	if m.MediaType != "" && !m.MediaType.IsImage() {
		return nil, fmt.Errorf("manifest %s is a %s, not an image", digest, m.MediaType)
	}
	rawCfg, err := s.readBlob(m.Config.Digest)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cfg, err := v1.ParseConfigFile(bytes.NewReader(rawCfg))
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", m.Config.Digest, err)
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return nil, fmt.Errorf("manifest %s has %d layers but its config lists %d", digest, len(m.Layers), len(cfg.RootFS.DiffIDs))
	}
	img := &Image{Digest: digest, Config: cfg}
	var total int64
	for i, l := range m.Layers {
		layer, err := s.layer(ctx, l.Digest, cfg.RootFS.DiffIDs[i], b.next(total))
		if err != nil {
			return nil, fmt.Errorf("layer %d (%s): %w", i+1, l.Digest, err)
		}
		total += layer.Size
		b.charge(layer.DiffID, layer.Size)
		img.Layers = append(img.Layers, layer)
	}
	return img, nil
}

// layer makes sure the uncompressed tar of a stored layer blob is in the
// store, and checks both against their digests.
func (s *Store) layer(ctx context.Context, digest, diffID v1.Hash, allow allowance) (Layer, error) {
	l := Layer{Digest: digest, DiffID: diffID, Path: s.uncompressedPath(diffID)}
	if diffID.Algorithm != "sha256" {
		return Layer{}, fmt.Errorf("diff id %s: unsupported digest algorithm", diffID)
	}
	if fi, err := os.Stat(l.Path); err == nil {
		if err := allow.check(fi.Size()); err != nil {
			return Layer{}, err
		}
		if _, err := s.verifyStored(ctx, s.blobPath(digest), digest, "blob "); err != nil {
			return Layer{}, err
		}
		l.Size, err = s.verifyStored(ctx, l.Path, diffID, "uncompressed layer ")
		return l, err
	}
	n, err := s.uncompress(ctx, digest, diffID, l.Path, allow)
	l.Size = n
	return l, err
}

// uncompress streams a stored blob through its decompressor into path,
// checking the blob against digest and the tar against diffID.
func (s *Store) uncompress(ctx context.Context, digest, diffID v1.Hash, path string, allow allowance) (int64, error) {
	f, err := os.Open(s.blobPath(digest))
	if err != nil {
		return 0, fmt.Errorf("blob %s: %w", digest, err)
	}
	defer f.Close()
	blob := &blobCheck{digest: digest, h: sha256.New()}
	blob.r = bufio.NewReaderSize(io.TeeReader(&ctxReader{ctx, f}, blob.h), 1<<16)
	tar, err := decompress(blob.r)
	if err != nil {
		return 0, firstErr(blob.check(), fmt.Errorf("blob %s: %w", digest, err))
	}
	defer tar.Close()
	n, err := writeHashed(path, allow.reader(tar), func(got v1.Hash, _ int64) error {
		// Check the blob first: a corrupt blob explains a wrong tar.
		if err := blob.check(); err != nil {
			return err
		}
		if got != diffID {
			return fmt.Errorf("uncompressed layer %s: %w (it hashes to %s)", diffID, ErrCorrupt, got)
		}
		return nil
	})
	if err != nil && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrLimit) {
		// A decompression error from a corrupt blob: say so.
		return 0, firstErr(blob.check(), err)
	}
	return n, err
}

// blobCheck hashes a compressed stream as the decompressor reads it.
type blobCheck struct {
	digest v1.Hash
	r      *bufio.Reader
	h      hash.Hash
}

// check reads what the decompressor left and compares the digest. It
// reports only a mismatch, not a read error.
func (b *blobCheck) check() error {
	if _, err := io.Copy(io.Discard, b.r); err != nil {
		return nil
	}
	if got := sum(b.h); got != b.digest {
		return fmt.Errorf("blob %s: %w (it hashes to %s)", b.digest, ErrCorrupt, got)
	}
	return nil
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// decompress picks the decompressor by the stream's magic number: gzip,
// zstd, or none for a plain tar.
func decompress(r *bufio.Reader) (io.ReadCloser, error) {
	magic, err := r.Peek(4)
	if err != nil && err != io.EOF {
		return nil, err
	}
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("reading gzip: %w", err)
		}
		return zr, nil
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("reading zstd: %w", err)
		}
		return zr.IOReadCloser(), nil
	default:
		return io.NopCloser(r), nil
	}
}

// verifyStored checks the stored file at path against its digest want:
// by its stamp when it holds one (see internal/stamp), else by hashing it
// whole, stamping it when it is right. It returns the file's size; what
// names the file in errors.
func (s *Store) verifyStored(ctx context.Context, path string, want v1.Hash, what string) (int64, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("%s%s is missing from the store: %w", what, want, err)
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	size := fi.Size() // what a stamp vouches for; a hash counts what it read
	err = s.Stamps().Check(f, what+want.String(), func() error {
		s.hashed.Add(1)
		h := sha256.New()
		n, err := io.Copy(h, &ctxReader{ctx, f})
		if err != nil {
			return fmt.Errorf("reading %s: %w", path, err)
		}
		if got := sum(h); got != want {
			return fmt.Errorf("%s%s (%s): %w (it hashes to %s)", what, want, path, ErrCorrupt, got)
		}
		size = n
		return nil
	})
	return size, err
}

// ctxReader stops reading once the context is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
