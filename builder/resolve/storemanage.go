package resolve

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Entry is one name the store records, with what it holds.
type Entry struct {
	Name   string  `json:"name"`
	Source string  `json:"source"` // SourceLocal, SourceRegistry or SourceLayout
	Digest v1.Hash `json:"digest"`
	// Size is the bytes of the blobs it uses that are in the store: the
	// manifest, config and layers (of each stored platform, for an index).
	Size int64 `json:"size"`
	// Complete says every blob it needs is in the store; an incomplete
	// entry (its blobs removed, a pull cut short) is stale: image ls
	// hides it and image prune removes it.
	Complete bool `json:"complete"`
}

// Entries lists the store's names, sorted, with their sizes.
func (s *Store) Entries() ([]Entry, error) {
	idx, err := s.readIndex()
	if err != nil {
		return nil, err
	}
	out := make([]Entry, 0, len(idx.Manifests))
	for _, d := range idx.Manifests {
		r := reach{s: s, blobs: map[v1.Hash]int64{}, diffIDs: map[v1.Hash]bool{}, complete: true}
		r.manifest(d.Digest, 0)
		e := Entry{Name: d.Annotations[AnnotationRefName], Source: d.Annotations[AnnotationSource], Digest: d.Digest, Complete: r.complete}
		for _, n := range r.blobs {
			e.Size += n
		}
		out = append(out, e)
	}
	return out, nil
}

// reach collects the blobs (and uncompressed layers) a manifest uses,
// its referrers' included, noting any that are missing.
type reach struct {
	s        *Store
	blobs    map[v1.Hash]int64
	diffIDs  map[v1.Hash]bool
	complete bool
}

// maxDepth bounds index nesting and referrer chains.
const maxDepth = 8

func (r *reach) blob(h v1.Hash) bool {
	if _, seen := r.blobs[h]; seen {
		return true
	}
	fi, err := os.Stat(r.s.blobPath(h))
	if err != nil {
		r.complete = false
		return false
	}
	r.blobs[h] = fi.Size()
	return true
}

// manifest walks an image manifest or an index. An index's platforms that
// were never pulled are not missing: a store holds the platforms it uses.
func (r *reach) manifest(h v1.Hash, depth int) {
	if depth > maxDepth || !r.blob(h) {
		return
	}
	raw, err := r.s.readBlob(h)
	if err != nil {
		r.complete = false
		return
	}
	r.referrers(h, depth)
	if sniffMediaType(raw).IsIndex() {
		idx, err := v1.ParseIndexManifest(bytes.NewReader(raw))
		if err != nil {
			r.complete = false
			return
		}
		stored := 0
		for _, c := range idx.Manifests {
			if r.s.hasBlob(c.Digest) {
				stored++
				r.manifest(c.Digest, depth+1)
			}
		}
		if stored == 0 {
			r.complete = false
		}
		return
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		r.complete = false
		return
	}
	for _, l := range m.Layers {
		r.blob(l.Digest)
	}
	if !r.blob(m.Config.Digest) {
		return
	}
	if cfg, err := r.s.readBlob(m.Config.Digest); err == nil {
		if cf, err := v1.ParseConfigFile(bytes.NewReader(cfg)); err == nil {
			for _, d := range cf.RootFS.DiffIDs {
				r.diffIDs[d] = true
			}
		}
	}
}

// referrers walks the signatures and attestations stored for h; they are
// kept as long as h is, and a missing one does not make h incomplete.
func (r *reach) referrers(h v1.Hash, depth int) {
	refs, err := r.s.Referrers(h)
	if err != nil {
		return
	}
	complete := r.complete
	for _, d := range refs {
		r.manifest(d.Digest, depth+1)
	}
	r.complete = complete
}

// Remove drops names (expanded Docker-style) from the store's index; their
// blobs go at the next Prune. A name the store does not have is an error,
// and then nothing is removed.
func (s *Store) Remove(names ...string) error {
	return s.editIndex(func(idx *v1.IndexManifest) error {
		drop := map[string]bool{}
		for _, n := range names {
			drop[expandName(n)] = true
		}
		kept := idx.Manifests[:0]
		for _, d := range idx.Manifests {
			if n := d.Annotations[AnnotationRefName]; drop[n] {
				delete(drop, n)
				continue
			}
			kept = append(kept, d)
		}
		for n := range drop {
			return fmt.Errorf("removing %s: %w in the store %s", ShortName(n), ErrNotFound, s.dir)
		}
		idx.Manifests = kept
		return nil
	})
}

// editIndex rewrites index.json under the store's lock.
func (s *Store) editIndex(edit func(*v1.IndexManifest) error) error {
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
	if err := edit(idx); err != nil {
		return err
	}
	b, err := marshalIndex(idx)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(s.path("index.json"), b); err != nil {
		return fmt.Errorf("writing store index: %w", err)
	}
	return nil
}

// Pruned is what Prune removed.
type Pruned struct {
	Entries []string `json:"entries"` // stale names dropped from the index
	Files   int      `json:"files"`   // blobs, uncompressed layers, layer and initrd caches, stamps and referrer records deleted
	Bytes   int64    `json:"bytes"`
}

// Prune drops the stale (incomplete) entries, then deletes every blob,
// uncompressed layer, layer cache and referrer record no remaining entry
// uses, and the cached initrd archives and the stamps (no entry needs
// them), that is
// older than grace (a pull or build writes its blobs before it names
// them: the grace keeps a concurrent one's). now is the reference time.
func (s *Store) Prune(grace time.Duration, now time.Time) (Pruned, error) {
	var p Pruned
	err := s.editIndex(func(idx *v1.IndexManifest) error {
		kept := idx.Manifests[:0]
		live := reach{s: s, blobs: map[v1.Hash]int64{}, diffIDs: map[v1.Hash]bool{}}
		for _, d := range idx.Manifests {
			r := reach{s: s, blobs: map[v1.Hash]int64{}, diffIDs: map[v1.Hash]bool{}, complete: true}
			r.manifest(d.Digest, 0)
			if !r.complete {
				p.Entries = append(p.Entries, d.Annotations[AnnotationRefName])
				continue
			}
			kept = append(kept, d)
			for h, n := range r.blobs {
				live.blobs[h] = n
			}
			for h := range r.diffIDs {
				live.diffIDs[h] = true
			}
		}
		idx.Manifests = kept
		cutoff := now.Add(-grace)
		for _, sweep := range []struct {
			dir  string
			live func(v1.Hash) bool
		}{
			{s.path("blobs", "sha256"), func(h v1.Hash) bool { _, ok := live.blobs[h]; return ok }},
			{s.path("uncompressed", "sha256"), func(h v1.Hash) bool { return live.diffIDs[h] }},
			{s.path("referrers", "sha256"), func(h v1.Hash) bool { _, ok := live.blobs[h]; return ok }},
			{s.LayerCacheDir(), func(h v1.Hash) bool { return live.diffIDs[h] }},
			{s.ArchiveCacheDir(), func(v1.Hash) bool { return false }},
			{filepath.Join(s.ArchiveCacheDir(), "used"), func(v1.Hash) bool { return false }},
			{s.StampDir(), func(v1.Hash) bool { return false }},
		} {
			if err := s.sweep(sweep.dir, sweep.live, cutoff, &p); err != nil {
				return err
			}
		}
		return nil
	})
	return p, err
}

// sweep deletes the entries of dir (files or, for referrers, directories
// named by a digest's hex) that are not live and not newer than cutoff.
func (s *Store) sweep(dir string, live func(v1.Hash) bool, cutoff time.Time, p *Pruned) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("pruning the store: %w", err)
	}
	for _, e := range entries {
		h, err := v1.NewHash("sha256:" + e.Name())
		if err != nil || live(h) {
			continue // not ours (a temporary file) or in use
		}
		fi, err := e.Info()
		if err != nil || fi.ModTime().After(cutoff) {
			continue
		}
		path := filepath.Join(dir, e.Name())
		size := dirSize(path, fi)
		if err := os.RemoveAll(path); err != nil {
			return fmt.Errorf("pruning the store: %w", err)
		}
		p.Files++
		p.Bytes += size
	}
	return nil
}

func dirSize(path string, fi fs.FileInfo) int64 {
	if !fi.IsDir() {
		return fi.Size()
	}
	var n int64
	filepath.WalkDir(path, func(_ string, d fs.DirEntry, err error) error { //nolint:errcheck // a size for the report only
		if err == nil && !d.IsDir() {
			if i, err := d.Info(); err == nil {
				n += i.Size()
			}
		}
		return nil
	})
	return n
}
