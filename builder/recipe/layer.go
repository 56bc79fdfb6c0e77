package recipe

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// entry is one file, directory or symlink of a tar this package writes.
type entry struct {
	name string // relative, slash-separated, no leading slash
	mode int64  // permission bits (and setuid/setgid/sticky)
	typ  byte   // tar.TypeReg, tar.TypeDir or tar.TypeSymlink
	link string // symlink target
	// A regular file's content comes from data, or else from the file src.
	data []byte
	src  string
}

func fileEntry(name string, mode int64, src string) entry {
	return entry{name: clean(name), mode: mode, typ: tar.TypeReg, src: src}
}

func dataEntry(name string, mode int64, data []byte) entry {
	return entry{name: clean(name), mode: mode, typ: tar.TypeReg, data: data}
}

func dirEntry(name string, mode int64) entry {
	return entry{name: clean(name), mode: mode, typ: tar.TypeDir}
}

func symlinkEntry(name, target string) entry {
	return entry{name: clean(name), mode: 0o777, typ: tar.TypeSymlink, link: target}
}

func clean(name string) string { return strings.TrimPrefix(path.Clean("/"+name), "/") }

// tree is a set of entries that writes itself as a reproducible tar.
type tree struct {
	entries map[string]entry
}

func newTree() *tree { return &tree{entries: map[string]entry{}} }

// add adds e and any missing parent directories (mode 0755). Two different
// entries for one path are an error; the same directory twice is not.
func (t *tree) add(e entry) error {
	if e.name == "" {
		return fmt.Errorf("adding an entry with an empty path")
	}
	if old, ok := t.entries[e.name]; ok {
		if old.typ == tar.TypeDir && e.typ == tar.TypeDir {
			if e.mode != 0o755 {
				t.entries[e.name] = e
			}
			return nil
		}
		return fmt.Errorf("/%s is added twice", e.name)
	}
	t.entries[e.name] = e
	for d := path.Dir(e.name); d != "."; d = path.Dir(d) {
		if _, ok := t.entries[d]; !ok {
			t.entries[d] = dirEntry(d, 0o755)
		}
	}
	return nil
}

// sorted returns the entries in path order (a parent before its children).
func (t *tree) sorted() []entry {
	out := make([]entry, 0, len(t.entries))
	for _, e := range t.entries {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// writeTar writes the tree as a tar: entries sorted, owned by 0:0, with the
// given modification time and no other times.
func (t *tree) writeTar(w io.Writer, mtime time.Time) error {
	tw := tar.NewWriter(w)
	for _, e := range t.sorted() {
		if err := writeEntry(tw, e, mtime); err != nil {
			return fmt.Errorf("writing /%s: %w", e.name, err)
		}
	}
	return tw.Close()
}

func writeEntry(tw *tar.Writer, e entry, mtime time.Time) error {
	h := &tar.Header{Typeflag: e.typ, Name: e.name, Mode: e.mode, ModTime: mtime, Linkname: e.link, Format: tar.FormatPAX}
	if e.typ == tar.TypeDir {
		h.Name += "/"
	}
	if e.typ != tar.TypeReg {
		return tw.WriteHeader(h)
	}
	if e.src == "" {
		h.Size = int64(len(e.data))
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		_, err := tw.Write(e.data)
		return err
	}
	f, err := os.Open(e.src)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	h.Size = st.Size()
	if err := tw.WriteHeader(h); err != nil {
		return err
	}
	_, err = io.Copy(tw, f)
	return err
}

// layerFormat changes when the bytes layer writes for a tree do.
const layerFormat = 1

// layer turns the tree into a gzip-compressed OCI layer. The gzip header
// carries no name and no time, so equal trees give equal blobs. The blob is
// kept in cacheDir under a hash of the tree's content, so an unchanged tree
// is not compressed again.
func (t *tree) layer(mtime time.Time, cacheDir string) (v1.Layer, error) {
	key, err := t.contentKey(mtime)
	if err != nil {
		return nil, fmt.Errorf("hashing layer content: %w", err)
	}
	file := filepath.Join(cacheDir, "layer", key+".tar.gz")
	if _, err := os.Stat(file); err != nil {
		if err := t.writeLayer(file, mtime); err != nil {
			return nil, fmt.Errorf("writing layer: %w", err)
		}
	}
	l, err := tarball.LayerFromFile(file, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("reading layer: %w", err)
	}
	return l, nil
}

// writeLayer writes the compressed tar to file, atomically.
func (t *tree) writeLayer(file string, mtime time.Time) error {
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(file), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // a no-op after the rename
	zw, err := gzip.NewWriterLevel(f, gzip.BestCompression)
	if err != nil {
		f.Close()
		return err
	}
	if err := t.writeTar(zw, mtime); err != nil {
		f.Close()
		return err
	}
	if err := zw.Close(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), file)
}

// contentKey hashes everything writeTar would write.
func (t *tree) contentKey(mtime time.Time) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "layer %d %d\n", layerFormat, mtime.Unix())
	for _, e := range t.sorted() {
		d := sha256.Sum256(e.data)
		sum := hex.EncodeToString(d[:])
		if e.src != "" {
			var err error
			if sum, err = fileSHA256(e.src); err != nil {
				return "", err
			}
		}
		fmt.Fprintf(h, "%q %o %c %q %s\n", e.name, e.mode, e.typ, e.link, sum)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
