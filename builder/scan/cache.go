package scan

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/bulkhead-dev/bulkhead/builder/rootfs"
	"github.com/bulkhead-dev/bulkhead/builder/scan/minimal"
	"github.com/bulkhead-dev/bulkhead/builder/scan/sbom"
	"github.com/bulkhead-dev/bulkhead/builder/scan/secrets"
	"github.com/bulkhead-dev/bulkhead/internal/buildid"
)

// Cache keeps what reading a layer's files found (secrets, ELF
// information, interpreters, Go build information), so that a build of
// unchanged layers does not read them again: DIR/<diff ID hex>/scan-<key>
// (resolve.Store.LayerCacheDir prunes a layer's directory with the
// layer). An entry is keyed by the
// scanner's version (the running program's Go build ID, which changes with
// any of its code or rules), the layer's diff ID and the path, offset and
// size of every file of the layer the tree holds, in tree order: a hit is
// exactly what a new read would find. An entry carries the sha256 of its
// body; one that is too large, does not match, or does not decode is a
// miss, read again and rewritten.
type Cache struct {
	dir     string
	version string
}

// maxCacheEntry bounds the read of one cache entry.
const maxCacheEntry = 64 << 20

// cacheFormat changes with the format of an entry.
const cacheFormat = "bulkhead scan cache 1"

// OpenCache returns the cache in dir for the running program's version.
// It returns nil (no cache: every layer is read) when that version cannot
// be told or dir cannot be made (a read-only store).
func OpenCache(dir string) *Cache {
	v, err := buildid.Program()
	if err != nil || v == "" {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil
	}
	return newCache(dir, v)
}

func newCache(dir, version string) *Cache { return &Cache{dir: dir, version: version} }

// layerFiles are the regular files of a tree read from one layer: their
// indexes in the tree's entry list, the layer's diff ID, and the cache key
// they make.
type layerFiles struct {
	index  []int
	diffID string
	key    string
}

// cachedFile is a fileResult as a cache entry holds it.
type cachedFile struct {
	Secrets []secrets.Finding `json:"s,omitempty"`
	ELF     *minimal.ELF      `json:"e,omitempty"`
	Interp  string            `json:"i,omitempty"`
	GoPkgs  []sbom.Package    `json:"g,omitempty"`
}

// layerGroups groups the regular files of all by the verified layer they
// are read from (layers maps a layer file to its diff ID), each with its
// cache key; files from anywhere else are not cached.
func (c *Cache) layerGroups(all []*rootfs.Entry, layers map[string]string) []*layerFiles {
	byBlob := map[string]*layerFiles{}
	var order []string
	for i, e := range all {
		if e.Kind != rootfs.KindFile || !isSHA256(layers[e.Content.Blob]) {
			continue
		}
		g := byBlob[e.Content.Blob]
		if g == nil {
			g = &layerFiles{diffID: layers[e.Content.Blob]}
			byBlob[e.Content.Blob] = g
			order = append(order, e.Content.Blob)
		}
		g.index = append(g.index, i)
	}
	out := make([]*layerFiles, 0, len(order))
	for _, blob := range order {
		g := byBlob[blob]
		h := sha256.New()
		fmt.Fprintf(h, "%s\n%s\n%s\n", cacheFormat, c.version, layers[blob])
		for _, i := range g.index {
			e := all[i]
			h.Write([]byte(e.Path))
			h.Write([]byte{0})
			h.Write([]byte(strconv.FormatInt(e.Content.Offset, 10) + " " + strconv.FormatInt(e.Size, 10) + "\n"))
		}
		g.key = hex.EncodeToString(h.Sum(nil))
		out = append(out, g)
	}
	return out
}

// isSHA256 says whether d is "sha256:" and 64 lower-case hex digits: a
// digest that can name a directory.
func isSHA256(d string) bool {
	h, ok := strings.CutPrefix(d, "sha256:")
	if !ok || len(h) != 64 {
		return false
	}
	for i := range len(h) {
		if !isHex(h[i]) {
			return false
		}
	}
	return true
}

// path is g's entry: in the directory of its layer, named by its key.
func (c *Cache) path(g *layerFiles) string {
	return filepath.Join(c.dir, strings.TrimPrefix(g.diffID, "sha256:"), "scan-"+g.key)
}

// load fills results for g's files from its entry and reports whether it
// could: a missing, oversized, corrupt or mismatched entry is a miss.
func (c *Cache) load(g *layerFiles, results []fileResult) bool {
	f, err := os.Open(c.path(g))
	if err != nil {
		return false
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxCacheEntry+1))
	if err != nil || len(b) > maxCacheEntry {
		return false
	}
	sum, body, ok := bytes.Cut(b, []byte{'\n'})
	if !ok {
		return false
	}
	got := sha256.Sum256(body)
	if string(sum) != hex.EncodeToString(got[:]) {
		return false
	}
	var files []cachedFile
	if err := json.Unmarshal(body, &files); err != nil || len(files) != len(g.index) {
		return false
	}
	for j, i := range g.index {
		cf := files[j]
		results[i] = fileResult{secrets: cf.Secrets, elf: cf.ELF, interp: cf.Interp, goPkgs: cf.GoPkgs}
	}
	return true
}

// store writes g's results as its entry: under a temporary name, then
// renamed, so a reader never sees a part of one. It is not synced: an
// entry a power cut spoils fails its sum and is read again.
func (c *Cache) store(g *layerFiles, results []fileResult) error {
	files := make([]cachedFile, len(g.index))
	for j, i := range g.index {
		r := results[i]
		files[j] = cachedFile{Secrets: r.secrets, ELF: r.elf, Interp: r.interp, GoPkgs: r.goPkgs}
	}
	body, err := json.Marshal(files)
	if err != nil {
		return err
	}
	if len(body) >= maxCacheEntry-65 {
		return nil // too large to be read back: not kept
	}
	sum := sha256.Sum256(body)
	p := c.path(g)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), "."+g.key[:16]+".tmp-*")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(tmp, "%x\n%s", sum, body)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), p)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}
