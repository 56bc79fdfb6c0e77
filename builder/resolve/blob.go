package resolve

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// putBlob copies r into the store as blob h. The content is hashed on the
// way; a blob whose content does not match h is never stored. A blob already
// present is not written again and r is not read.
func (s *Store) putBlob(h v1.Hash, r io.Reader) error {
	if h.Algorithm != "sha256" {
		return fmt.Errorf("blob %s: unsupported digest algorithm", h)
	}
	if s.hasBlob(h) {
		return nil
	}
	return writeVerified(s.blobPath(h), h, r)
}

// writeVerified streams r into a temporary file next to path while hashing
// it, and renames it to path only if its digest is want.
func writeVerified(path string, want v1.Hash, r io.Reader) error {
	_, err := writeHashed(path, r, func(got v1.Hash, _ int64) error {
		if got != want {
			return fmt.Errorf("blob %s: %w (it hashes to %s)", want, ErrCorrupt, got)
		}
		return nil
	})
	return err
}

// writeHashed streams r into a temporary file next to path, hashing it, lets
// check accept or refuse the result, and renames the file to path if
// accepted.
func writeHashed(path string, r io.Reader, check func(v1.Hash, int64) error) (int64, error) {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return 0, err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op after the rename
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), r)
	if err == nil {
		err = check(sum(h), n)
	}
	if err == nil {
		err = f.Chmod(0o444)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, err
	}
	return n, os.Rename(tmp, path)
}

func sum(h hash.Hash) v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", h.Sum(nil))}
}

// openBlob opens blob h for reading; the reader fails at the end of the
// content if it does not match h.
func (s *Store) openBlob(h v1.Hash) (io.ReadCloser, error) {
	f, err := os.Open(s.blobPath(h))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("blob %s is missing from the store: %w", h, err)
	}
	if err != nil {
		return nil, err
	}
	return newVerifier(f, h), nil
}

// readBlob reads a whole (small) blob, verified.
func (s *Store) readBlob(h v1.Hash) ([]byte, error) {
	rc, err := s.openBlob(h)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// verifier hashes what is read through it and turns EOF into an error when
// the content does not match the expected digest.
type verifier struct {
	r    io.ReadCloser
	want v1.Hash
	h    hash.Hash
}

func newVerifier(r io.ReadCloser, want v1.Hash) *verifier {
	return &verifier{r: r, want: want, h: sha256.New()}
}

func (v *verifier) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	if err == io.EOF {
		if got := sum(v.h); got != v.want {
			return n, fmt.Errorf("blob %s: %w (it hashes to %s)", v.want, ErrCorrupt, got)
		}
	}
	return n, err
}

func (v *verifier) Close() error { return v.r.Close() }
