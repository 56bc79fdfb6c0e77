package resolve

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"gopkg.in/yaml.v3"

	"github.com/bulkhead-dev/bulkhead/internal/regfile"
)

// LockVersion is the lock file format version this package writes.
const LockVersion = 1

// Lock pins each image reference of a spec to a digest, per platform.
type Lock struct {
	Version int         `yaml:"version"`
	Images  []LockEntry `yaml:"images"`
}

// LockEntry pins one reference, as written in the spec, for one platform.
type LockEntry struct {
	Ref      string   `yaml:"ref"`             // as written in the spec
	Name     string   `yaml:"name"`            // fully expanded
	Digest   v1.Hash  `yaml:"digest"`          // the platform's image manifest
	Index    *v1.Hash `yaml:"index,omitempty"` // the index it was picked from, if any
	Platform string   `yaml:"platform"`        // os/arch[/variant]
	// Key identifies the key whose signature the image must carry, when a
	// trust policy asks for one.
	Key string `yaml:"key,omitempty"`
}

const lockHeader = "# Image pins for a bulkhead host spec, written by `bulkhead lock`.\n"

// LockPath is where the lock file of a spec lives: the spec's path with
// .yml or .yaml replaced by .lock (or .lock appended).
func LockPath(specPath string) string {
	for _, ext := range []string{".yml", ".yaml"} {
		if strings.HasSuffix(specPath, ext) {
			return strings.TrimSuffix(specPath, ext) + ".lock"
		}
	}
	return specPath + ".lock"
}

// maxLockFile bounds a lock file: a pin is a few hundred bytes.
const maxLockFile = 16 << 20

// LoadLock reads a lock file: a regular file (a symbolic link to a device
// or a FIFO is refused without blocking) of at most 16 MiB.
func LoadLock(path string) (*Lock, error) {
	b, err := regfile.ReadFile(path, maxLockFile)
	if err != nil {
		return nil, fmt.Errorf("reading lock file: %w", err)
	}
	var l Lock
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&l); err != nil {
		return nil, fmt.Errorf("reading lock file %s: %w", path, err)
	}
	if l.Version != LockVersion {
		return nil, fmt.Errorf("reading lock file %s: version %d, want %d", path, l.Version, LockVersion)
	}
	for i, e := range l.Images {
		if e.Ref == "" || e.Platform == "" || e.Digest == (v1.Hash{}) {
			return nil, fmt.Errorf("reading lock file %s: entry %d: needs ref, digest and platform", path, i+1)
		}
	}
	return &l, nil
}

// LoadLockIfExists is LoadLock, returning an empty lock for a missing file.
func LoadLockIfExists(path string) (*Lock, error) {
	l, err := LoadLock(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &Lock{Version: LockVersion}, nil
	}
	return l, err
}

// Find returns the entry pinning ref for platform p.
func (l *Lock) Find(ref string, p v1.Platform) (LockEntry, bool) {
	for _, e := range l.Images {
		if e.Ref == ref && e.Platform == p.String() {
			return e, true
		}
	}
	return LockEntry{}, false
}

// Set adds e, replacing the entry for the same ref and platform.
func (l *Lock) Set(e LockEntry) {
	for i := range l.Images {
		if l.Images[i].Ref == e.Ref && l.Images[i].Platform == e.Platform {
			l.Images[i] = e
			return
		}
	}
	l.Images = append(l.Images, e)
}

// Pin records a resolved image for platform p. An entry's key survives when
// its digest does not change.
func (l *Lock) Pin(img *Image, p v1.Platform) {
	e := LockEntry{Ref: img.Ref, Name: img.Name, Digest: img.Digest, Index: img.Index, Platform: p.String()}
	if old, ok := l.Find(img.Ref, p); ok && old.Digest == img.Digest {
		e.Key = old.Key
	}
	l.Set(e)
}

// Keep drops the entries for which keep returns false.
func (l *Lock) Keep(keep func(LockEntry) bool) {
	kept := l.Images[:0]
	for _, e := range l.Images {
		if keep(e) {
			kept = append(kept, e)
		}
	}
	l.Images = kept
}

// Marshal renders the lock file: entries sorted by ref, then platform.
func (l *Lock) Marshal() ([]byte, error) {
	out := Lock{Version: LockVersion, Images: append([]LockEntry(nil), l.Images...)}
	sort.Slice(out.Images, func(i, j int) bool {
		a, b := out.Images[i], out.Images[j]
		if a.Ref != b.Ref {
			return a.Ref < b.Ref
		}
		return a.Platform < b.Platform
	})
	var buf bytes.Buffer
	buf.WriteString(lockHeader)
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(out); err != nil {
		return nil, fmt.Errorf("encoding lock file: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encoding lock file: %w", err)
	}
	return buf.Bytes(), nil
}

// Write writes the lock file atomically.
func (l *Lock) Write(path string) error {
	b, err := l.Marshal()
	if err != nil {
		return err
	}
	if err := writeFileAtomic(path, b); err != nil {
		return fmt.Errorf("writing lock file: %w", err)
	}
	return nil
}

// LoadSpecLock reads the lock file of the spec at specPath (see LockPath).
// A missing one is an empty lock, unless locked: then it is an error that
// says how to write one.
func LoadSpecLock(specPath string, locked bool) (*Lock, error) {
	path := LockPath(specPath)
	l, err := LoadLock(path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && locked:
		return nil, fmt.Errorf("%s not found: run bulkhead lock %s", path, specPath)
	case errors.Is(err, fs.ErrNotExist):
		return &Lock{Version: LockVersion}, nil
	}
	return l, err
}
