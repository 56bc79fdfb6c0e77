package resolve

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// OpenExistingStore opens the store in dir for reading: unlike OpenStore it
// never creates one, so a mistyped --store is an error, not an empty store.
func OpenExistingStore(dir string) (*Store, error) {
	if _, err := os.Stat(filepath.Join(dir, "oci-layout")); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("image store %s does not exist (bulkhead image build or bulkhead image pull fills one)", dir)
		}
		return nil, fmt.Errorf("opening image store: %w", err)
	}
	return OpenStore(dir)
}

// Limits on a tar that Load reads.
const (
	maxLayoutIndex   = 4 << 20
	maxLayoutEntries = 1 << 20
)

// Save writes the named entries, with every blob they use, to w as a tar
// of an OCI image layout (oci-layout, index.json naming each entry by its
// full name, blobs/sha256/...). The tar is the same for the same entries:
// sorted, with zero times and fixed modes.
func (s *Store) Save(w io.Writer, names ...string) error {
	if len(names) == 0 {
		return errors.New("saving: no images named")
	}
	idx := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}
	blobs := map[v1.Hash]int64{}
	for _, n := range names {
		full := expandName(n)
		d, ok, err := s.entry(full)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("saving %s: %w in the store %s", n, ErrNotFound, s.dir)
		}
		r := reach{s: s, blobs: map[v1.Hash]int64{}, diffIDs: map[v1.Hash]bool{}, complete: true}
		r.manifest(d.Digest, 0)
		if !r.complete {
			return fmt.Errorf("saving %s: some of its blobs are missing from the store (bulkhead image prune drops it)", n)
		}
		for h, size := range r.blobs {
			blobs[h] = size
		}
		idx.Manifests = append(idx.Manifests, v1.Descriptor{MediaType: d.MediaType, Size: d.Size, Digest: d.Digest,
			Annotations: map[string]string{AnnotationRefName: full}})
	}
	sort.Slice(idx.Manifests, func(i, j int) bool {
		return idx.Manifests[i].Annotations[AnnotationRefName] < idx.Manifests[j].Annotations[AnnotationRefName]
	})
	index, err := marshalIndex(&idx)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	for _, f := range []struct {
		name string
		data []byte
	}{{"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}` + "\n")}, {"index.json", index}} {
		if err := writeTarFile(tw, f.name, int64(len(f.data)), bytes.NewReader(f.data)); err != nil {
			return err
		}
	}
	hashes := make([]v1.Hash, 0, len(blobs))
	for h := range blobs {
		hashes = append(hashes, h)
	}
	sort.Slice(hashes, func(i, j int) bool { return hashes[i].Hex < hashes[j].Hex })
	for _, h := range hashes {
		rc, err := s.openBlob(h)
		if err != nil {
			return err
		}
		err = writeTarFile(tw, path.Join("blobs", h.Algorithm, h.Hex), blobs[h], rc)
		rc.Close()
		if err != nil {
			return fmt.Errorf("saving blob %s: %w", h, err)
		}
	}
	return tw.Close()
}

func writeTarFile(tw *tar.Writer, name string, size int64, r io.Reader) error {
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: size, Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
		return err
	}
	_, err := io.Copy(tw, r)
	return err
}

// Load reads a tar of an OCI image layout (as Save writes, or any whose
// index.json names its entries by full image name) into the store: every
// blob is checked against its digest on the way in, and an entry is
// recorded only once all its blobs are there. It returns the names
// loaded.
func (s *Store) Load(r io.Reader) ([]string, error) {
	tr := tar.NewReader(r)
	var index []byte
	for n := 0; ; n++ {
		if n > maxLayoutEntries {
			return nil, fmt.Errorf("loading: more than %d entries", maxLayoutEntries)
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("loading: %w", err)
		}
		clean := path.Clean(strings.TrimPrefix(hdr.Name, "./"))
		switch {
		case hdr.Typeflag != tar.TypeReg:
		case clean == "index.json":
			if hdr.Size > maxLayoutIndex {
				return nil, fmt.Errorf("loading: index.json is larger than %d bytes", maxLayoutIndex)
			}
			if index, err = io.ReadAll(io.LimitReader(tr, maxLayoutIndex)); err != nil {
				return nil, fmt.Errorf("loading: %w", err)
			}
		case strings.HasPrefix(clean, "blobs/sha256/"):
			h, err := v1.NewHash("sha256:" + path.Base(clean))
			if err != nil {
				return nil, fmt.Errorf("loading: %s is not named by a digest", hdr.Name)
			}
			if err := s.putBlob(h, tr); err != nil {
				return nil, fmt.Errorf("loading %s: %w", hdr.Name, err)
			}
		}
	}
	if index == nil {
		return nil, errors.New("loading: no index.json: not an OCI image layout")
	}
	return s.recordLayoutIndex(index)
}

func (s *Store) recordLayoutIndex(index []byte) ([]string, error) {
	var idx v1.IndexManifest
	if err := json.Unmarshal(index, &idx); err != nil {
		return nil, fmt.Errorf("loading: index.json: %w", err)
	}
	var names []string
	for _, d := range idx.Manifests {
		ref, err := name.ParseReference(d.Annotations[AnnotationRefName])
		if err != nil || !strings.Contains(d.Annotations[AnnotationRefName], "/") {
			return nil, fmt.Errorf("loading: index.json entry %s is not named by a full image name (%q)", d.Digest, d.Annotations[AnnotationRefName])
		}
		r := reach{s: s, blobs: map[v1.Hash]int64{}, diffIDs: map[v1.Hash]bool{}, complete: true}
		r.manifest(d.Digest, 0)
		if !r.complete {
			return nil, fmt.Errorf("loading %s: the tar lacks some of its blobs", ref)
		}
		if err := s.setEntry(fullName(ref), d, SourceLayout); err != nil {
			return nil, err
		}
		names = append(names, fullName(ref))
	}
	return names, nil
}

// Push copies a stored entry to a registry reference (name, or the name
// it is stored under when to is ""), and returns the digest pushed.
func (s *Store) Push(ctx context.Context, stored, to string, keychain authn.Keychain) (v1.Hash, error) {
	d, ok, err := s.entry(expandName(stored))
	if err != nil {
		return v1.Hash{}, err
	}
	if !ok {
		return v1.Hash{}, fmt.Errorf("pushing %s: %w in the store %s", stored, ErrNotFound, s.dir)
	}
	if to == "" {
		to = stored
	}
	ref, err := name.ParseReference(to)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("pushing to %q: %w", to, err)
	}
	p := layout.Path(s.dir)
	opts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(keychain)}
	raw, err := s.readBlob(d.Digest)
	if err != nil {
		return v1.Hash{}, err
	}
	if sniffMediaType(raw).IsIndex() {
		idx, err := p.ImageIndex()
		if err == nil {
			var child v1.ImageIndex
			if child, err = idx.ImageIndex(d.Digest); err == nil {
				err = remote.WriteIndex(ref, child, opts...)
			}
		}
		if err != nil {
			return v1.Hash{}, fmt.Errorf("pushing %s to %s: %w (an index pushes only whole: every platform must be in the store)", stored, ref, err)
		}
		return d.Digest, nil
	}
	img, err := s.image(d.Digest)
	if err == nil {
		err = remote.Write(ref, img, opts...)
	}
	if err != nil {
		return v1.Hash{}, fmt.Errorf("pushing %s to %s: %w", stored, ref, err)
	}
	return d.Digest, nil
}
