package output

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"os"
	"path/filepath"
	"sync"
)

// AtomicFile is an output file written under a temporary name in its final
// directory (".name.tmp-XXXX") and renamed into place by Commit. Until then
// nothing exists at the final path; Abort removes the temporary file.
// What goes through Write is hashed on the way (Digest), so the file need
// not be read back to be listed or signed.
type AtomicFile struct {
	f      *os.File
	path   string
	closed bool
	done   bool
	h      hash.Hash
	raw    bool // File was handed out: writes bypass the hash
	// known is the digest of a file made by Link, which takes no writes.
	known string
}

// Create starts writing the file at path. The file gets mode 0644.
func Create(path string) (*AtomicFile, error) {
	dir, name := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+name+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("creating %s: %w", path, err)
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("creating %s: %w", path, err)
	}
	return &AtomicFile{f: f, path: path, h: sha256.New()}, nil
}

// Name is the final path.
func (a *AtomicFile) Name() string { return a.path }

// Write writes to the temporary file.
func (a *AtomicFile) Write(p []byte) (int, error) {
	if a.known != "" {
		return 0, fmt.Errorf("writing %s: a linked file takes no writes", a.path)
	}
	n, err := a.f.Write(p)
	a.h.Write(p[:n])
	return n, err
}

// Digest returns the sha256 ("sha256:<hex>") of what Write wrote, and false
// when File was used (the writes it allowed are not hashed).
func (a *AtomicFile) Digest() (string, bool) {
	if a.raw {
		return "", false
	}
	if a.known != "" {
		return a.known, true
	}
	return "sha256:" + hex.EncodeToString(a.h.Sum(nil)), true
}

// Commit flushes the file to disk, renames it to its final path and flushes
// the directory. After Commit, Abort does nothing.
func (a *AtomicFile) Commit() error {
	return commitAll(a)
}

// Abort closes and removes the temporary file. It does nothing after Commit
// or a previous Abort, so it can be deferred.
func (a *AtomicFile) Abort() error {
	if a.done {
		return nil
	}
	a.done = true
	var errs []error
	if !a.closed {
		errs = append(errs, a.f.Close())
	}
	if err := os.Remove(a.f.Name()); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("removing temporary %s: %w", a.f.Name(), err)
	}
	return nil
}

// finish flushes and closes the temporary file, once: a file finished
// ahead of its siblings (WriteKernel) is not flushed again.
func (a *AtomicFile) finish() error {
	if a.closed {
		return nil
	}
	if err := a.f.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", a.path, err)
	}
	a.closed = true
	if err := a.f.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", a.path, err)
	}
	return nil
}

// commitAll commits files together: only once every one of them is on disk
// are they renamed into place. If any fails before the renames, none
// appears; the ones not yet renamed are always removed.
func commitAll(files ...*AtomicFile) error {
	for _, a := range files {
		if a.done {
			return fmt.Errorf("committing %s: already committed or aborted", a.path)
		}
	}
	// The flushes wait on the disk, not the CPU: all at once.
	errs := make([]error, len(files))
	var wg sync.WaitGroup
	for i, a := range files {
		wg.Go(func() { errs[i] = a.finish() })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		abortAll(files)
		return err
	}
	for i, a := range files {
		if err := os.Rename(a.f.Name(), a.path); err != nil {
			abortAll(files[i:])
			return fmt.Errorf("committing %s: %w", a.path, err)
		}
		a.done = true
	}
	return syncDirs(files)
}

func abortAll(files []*AtomicFile) {
	for _, a := range files {
		_ = a.Abort()
	}
}

// syncDirs flushes each distinct directory holding files.
func syncDirs(files []*AtomicFile) error {
	seen := map[string]bool{}
	for _, a := range files {
		dir := filepath.Dir(a.path)
		if seen[dir] {
			continue
		}
		seen[dir] = true
		if err := syncDir(dir); err != nil {
			return err
		}
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	return nil
}

// WriteFile writes data to the file at path atomically: under a temporary
// name, renamed when complete.
func WriteFile(path string, data []byte) error {
	f, err := Create(path)
	if err != nil {
		return err
	}
	defer f.Abort()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return f.Commit()
}
