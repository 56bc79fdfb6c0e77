package resolve

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/bulkhead-dev/bulkhead/internal/stamp"
)

// Annotations bulkhead records on the store's index.json entries.
const (
	// AnnotationRefName holds the fully expanded name of an entry.
	AnnotationRefName = "org.opencontainers.image.ref.name"
	// AnnotationSource says where an entry came from: SourceLocal,
	// SourceRegistry or SourceLayout.
	AnnotationSource = "dev.bulkhead.source"

	SourceLocal    = "local"    // built on this machine
	SourceRegistry = "registry" // pulled from a registry
	SourceLayout   = "layout"   // copied from an OCI layout on disk
)

// Store is a local OCI image layout holding pulled and locally built images,
// plus the uncompressed tar of every layer under uncompressed/sha256/, and
// what builds found in a layer under cache/layers/<diff ID hex>/
// (LayerCacheDir), pruned with the layer.
// A stored blob or uncompressed layer that was verified before and holds
// its stamp (internal/stamp, kept under cache/verified/) is not hashed
// again; any other is.
// It is safe for concurrent use, also by several processes.
type Store struct {
	dir string
	mu  sync.Mutex // serialises index.json updates inside this process
	// stamps opens, on first use, the book of stamps that vouch for files
	// verified before (nil: none do).
	stamps func() *stamp.Book
	// hashed counts the stored files hashed in full (tests).
	hashed atomic.Int64
}

// DefaultStoreDir is $BULKHEAD_STORE, else $XDG_CACHE_HOME/bulkhead/store,
// else ~/.cache/bulkhead/store.
func DefaultStoreDir() (string, error) {
	if d := os.Getenv("BULKHEAD_STORE"); d != "" {
		return d, nil
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "bulkhead", "store"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("finding the image store: %w", err)
	}
	return filepath.Join(home, ".cache", "bulkhead", "store"), nil
}

// IsStore reports whether dir holds a store (an OCI image layout, as
// OpenStore makes one), without creating or changing anything.
func IsStore(dir string) bool {
	fi, err := os.Stat(filepath.Join(dir, "oci-layout"))
	return err == nil && fi.Mode().IsRegular()
}

// OpenStore opens the store in dir, creating it if missing, with the
// stamps under the user's key (stamp.KeyPath), read when first needed.
func OpenStore(dir string) (*Store, error) {
	s := &Store{dir: dir}
	s.stamps = sync.OnceValue(func() *stamp.Book {
		key, err := stamp.KeyPath()
		if err != nil {
			return nil
		}
		return stamp.Open(s.StampDir(), key)
	})
	for _, d := range []string{s.path("blobs", "sha256"), s.path("uncompressed", "sha256")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("opening image store: %w", err)
		}
	}
	if err := createOnce(s.path("oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`+"\n")); err != nil {
		return nil, fmt.Errorf("opening image store: %w", err)
	}
	empty, err := marshalIndex(&v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex})
	if err != nil {
		return nil, err
	}
	if err := createOnce(s.path("index.json"), empty); err != nil {
		return nil, fmt.Errorf("opening image store: %w", err)
	}
	return s, nil
}

// Dir is the store's directory.
func (s *Store) Dir() string { return s.dir }

// Layout is the store as a go-containerregistry OCI layout, for reading.
// Reads through it are not verified; prefer Image.
func (s *Store) Layout() layout.Path { return layout.Path(s.dir) }

func (s *Store) path(elem ...string) string {
	return filepath.Join(append([]string{s.dir}, elem...)...)
}

func (s *Store) blobPath(h v1.Hash) string { return s.path("blobs", h.Algorithm, h.Hex) }

// LayerCacheDir is where builds keep what they found in each layer (the
// scan's findings), in a directory per layer named by its diff ID's hex:
// Prune deletes a layer's with the layer.
func (s *Store) LayerCacheDir() string { return s.path("cache", "layers") }

// ArchiveCacheDir is where builds keep compressed initrd archives
// (output.ArchiveCache): checked on use, bounded in number, and deleted
// by Prune with the used/ records of when each was last used.
func (s *Store) ArchiveCacheDir() string { return s.path("cache", "initrd") }

// Stamps is the book of stamps the store's files are checked with (nil
// when there is none): others keeping verified files in the store may use
// it too.
func (s *Store) Stamps() *stamp.Book { return s.stamps() }

// StampDir holds the stamps of verified files: Prune deletes them all
// (each costs one verification to make again).
func (s *Store) StampDir() string { return s.path("cache", "verified") }

func (s *Store) uncompressedPath(diffID v1.Hash) string {
	return s.path("uncompressed", diffID.Algorithm, diffID.Hex)
}

// hasBlob reports whether the blob is present (not whether it is intact).
func (s *Store) hasBlob(h v1.Hash) bool {
	_, err := os.Stat(s.blobPath(h))
	return err == nil
}

// WriteImage stores a locally built image under name, replacing any older
// entry of that name, and returns its manifest digest. Every blob is checked
// against its digest on the way in. The entry is marked as built locally, so
// a Resolver takes it from the store instead of asking a registry.
func (s *Store) WriteImage(name string, img v1.Image) (v1.Hash, error) {
	desc, err := s.putImage(img)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("writing image %s: %w", name, err)
	}
	if err := s.setEntry(expandName(name), desc, SourceLocal); err != nil {
		return v1.Hash{}, fmt.Errorf("writing image %s: %w", name, err)
	}
	return desc.Digest, nil
}

// Lookup returns the digest recorded for name (expanded Docker-style): a
// manifest, or an index for an image pulled from a multi-platform tag.
func (s *Store) Lookup(name string) (v1.Hash, bool, error) {
	desc, ok, err := s.entry(expandName(name))
	if err != nil || !ok {
		return v1.Hash{}, false, err
	}
	return desc.Digest, true, nil
}

// Image returns the stored image with the given manifest digest. Its blobs are
// verified as they are read.
func (s *Store) Image(digest v1.Hash) (v1.Image, error) {
	img, err := s.image(digest)
	if err != nil {
		return nil, fmt.Errorf("reading image %s from the store: %w", digest, err)
	}
	return img, nil
}

// expandName expands a registry name Docker-style; other names (oci:...)
// are kept as they are.
func expandName(s string) string {
	ref, err := name.ParseReference(s)
	if err != nil {
		return s
	}
	return fullName(ref)
}

// fullName renders a reference with its registry spelled docker.io, not
// go-containerregistry's index.docker.io.
func fullName(ref name.Reference) string {
	reg := ref.Context().RegistryStr()
	if reg == name.DefaultRegistry {
		reg = "docker.io"
	}
	sep := ":"
	if _, ok := ref.(name.Digest); ok {
		sep = "@"
	}
	return reg + "/" + ref.Context().RepositoryStr() + sep + ref.Identifier()
}

// entry finds the index.json entry named name.
func (s *Store) entry(name string) (v1.Descriptor, bool, error) {
	idx, err := s.readIndex()
	if err != nil {
		return v1.Descriptor{}, false, err
	}
	for _, d := range idx.Manifests {
		if d.Annotations[AnnotationRefName] == name {
			return d, true, nil
		}
	}
	return v1.Descriptor{}, false, nil
}

func (s *Store) readIndex() (*v1.IndexManifest, error) {
	b, err := os.ReadFile(s.path("index.json"))
	if err != nil {
		return nil, fmt.Errorf("reading store index: %w", err)
	}
	idx, err := v1.ParseIndexManifest(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("reading store index %s: %w", s.path("index.json"), err)
	}
	return idx, nil
}

// setEntry records name -> desc in index.json, replacing an older entry of
// the same name. The file is rewritten under an exclusive lock and replaced
// atomically, so readers never see a torn file and writers never lose an
// update.
func (s *Store) setEntry(name string, desc v1.Descriptor, source string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	unlock, err := lockFile(s.path("index.json.lock"))
	if err != nil {
		return fmt.Errorf("locking store index: %w", err)
	}
	defer unlock()
	idx, err := s.readIndex()
	if err != nil {
		return err
	}
	entry := v1.Descriptor{
		MediaType:   desc.MediaType,
		Size:        desc.Size,
		Digest:      desc.Digest,
		Annotations: map[string]string{AnnotationRefName: name, AnnotationSource: source},
	}
	kept := idx.Manifests[:0]
	for _, d := range idx.Manifests {
		if d.Annotations[AnnotationRefName] != name {
			kept = append(kept, d)
		}
	}
	idx.Manifests = append(kept, entry)
	sort.SliceStable(idx.Manifests, func(i, j int) bool {
		return idx.Manifests[i].Annotations[AnnotationRefName] < idx.Manifests[j].Annotations[AnnotationRefName]
	})
	b, err := marshalIndex(idx)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(s.path("index.json"), b); err != nil {
		return fmt.Errorf("writing store index: %w", err)
	}
	return nil
}

func marshalIndex(idx *v1.IndexManifest) ([]byte, error) {
	if idx.Manifests == nil {
		idx.Manifests = []v1.Descriptor{}
	}
	b, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding store index: %w", err)
	}
	return append(b, '\n'), nil
}

// lockFile takes an exclusive advisory lock on path, creating it.
func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN) //nolint:errcheck // closing drops the lock too
		f.Close()
	}, nil
}

// writeFileAtomic writes b to a temporary file next to path, syncs it and
// renames it over path.
func writeFileAtomic(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op after the rename
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// createOnce writes b to path unless path exists; of two racing creators
// exactly one wins and the file is never seen half written.
func createOnce(path string, b []byte) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o644); err != nil {
		return err
	}
	if err := os.Link(tmp, path); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return nil
}
