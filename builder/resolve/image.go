package resolve

import (
	"io"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Image is a resolved image: pinned by digest, with its config and its layers
// available uncompressed in the local store.
type Image struct {
	// Ref is the reference as written in the spec (before expansion).
	Ref string
	// Name is the fully expanded reference (docker.io/library/redis:latest).
	Name string
	// Digest is the digest of the platform-specific image manifest.
	Digest v1.Hash
	// Index is the digest of the index the manifest was chosen from, if any.
	Index *v1.Hash
	// Config is the image's config file (env, cmd, labels, ...).
	Config *v1.ConfigFile
	// Layers are in application order, bottom first.
	Layers []Layer
}

// Layer is one image layer, kept uncompressed in the store so the root tree
// can point at file contents by offset instead of holding them in memory.
type Layer struct {
	Digest v1.Hash // compressed blob digest, as in the manifest
	DiffID v1.Hash // digest of the uncompressed tar
	// Path is the uncompressed tar in the store; its sha256 is DiffID.
	Path string
	Size int64 // uncompressed size
}

// Open opens the uncompressed layer tar.
func (l Layer) Open() (*os.File, error) { return os.Open(l.Path) }

var _ io.ReaderAt = (*os.File)(nil)
