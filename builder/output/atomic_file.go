package output

import (
	"fmt"
	"os"
	"path/filepath"
)

// File is the open temporary file, for writers that need random access
// (WriteAt, Truncate) such as disk image writers. Do not close it or rename
// it: Commit and Abort do. After File, Digest reports no digest.
func (a *AtomicFile) File() *os.File {
	a.raw = true
	return a.f
}

// Link starts the file at path as a hard link to src, a finished file in
// the same file system whose sha256 ("sha256:<hex>") the caller hashed
// while writing it: nothing is copied, and Digest reports digest. Commit
// and Abort work as for Create; src itself stays. The caller copies
// instead when Link fails (another file system).
func Link(path, src, digest string) (*AtomicFile, error) {
	dir, name := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+name+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("creating %s: %w", path, err)
	}
	tmp.Close()
	// The name is ours until the link takes it; a link that loses it to
	// another process fails and the caller copies.
	if err := os.Remove(tmp.Name()); err != nil {
		return nil, fmt.Errorf("creating %s: %w", path, err)
	}
	if err := os.Link(src, tmp.Name()); err != nil {
		return nil, fmt.Errorf("linking %s: %w", path, err)
	}
	f, err := os.Open(tmp.Name())
	if err == nil {
		err = f.Chmod(0o644)
	}
	if err != nil {
		if f != nil {
			f.Close()
		}
		os.Remove(tmp.Name())
		return nil, fmt.Errorf("linking %s: %w", path, err)
	}
	return &AtomicFile{f: f, path: path, known: digest}, nil
}
