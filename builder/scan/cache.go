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
// exactly what a new read would find. The files whose bytes the tree
// holds (a spec's files entries, what bulkhead writes) share one more
// entry, keyed by their paths and the sha256 of their bytes, in a
// directory no layer has (Prune deletes it), so that a warm build need
// not load gitleaks' rules at all. An entry carries the sha256 of its
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
// cache key, and the files whose bytes the tree holds (a spec's files
// entries, what bulkhead writes) in one more group, keyed by those
// bytes; files from anywhere else are not cached.
func (c *Cache) layerGroups(all []*rootfs.Entry, layers map[string]string) []*layerFiles {
	byBlob := map[string]*layerFiles{}
	var order []string
	inline := &layerFiles{diffID: inlineGroup}
	for i, e := range all {
		if e.Kind == rootfs.KindFile && e.Content.Blob == "" {
			inline.index = append(inline.index, i)
			continue
		}
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
	if len(inline.index) > 0 {
		h := sha256.New()
		fmt.Fprintf(h, "%s\n%s\n%s\n", cacheFormat, c.version, inlineGroup)
		for _, i := range inline.index {
			e := all[i]
			sum := sha256.Sum256(e.Content.Data)
			h.Write([]byte(e.Path))
			fmt.Fprintf(h, "\x00%d %x\n", e.Size, sum)
		}
		inline.key = hex.EncodeToString(h.Sum(nil))
		out = append(out, inline)
	}
	return out
}

// inlineGroup names the cache directory of the files whose bytes the tree
// holds, as a layer's diff ID names its own: no layer has it, so a prune
// of the store deletes it, as it does the cache of a layer gone.
var inlineGroup = func() string {
	h := sha256.Sum256([]byte("bulkhead scan cache: files not read from a layer"))
	return "sha256:" + hex.EncodeToString(h[:])
}()

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
	var files []cachedFile
	if !readCacheEntry(c.path(g), &files) || len(files) != len(g.index) {
		return false
	}
	for j, i := range g.index {
		cf := files[j]
		results[i] = fileResult{secrets: cf.Secrets, elf: cf.ELF, interp: cf.Interp, goPkgs: cf.GoPkgs}
	}
	return true
}

// store writes g's results as its entry.
func (c *Cache) store(g *layerFiles, results []fileResult) error {
	files := make([]cachedFile, len(g.index))
	for j, i := range g.index {
		r := results[i]
		files[j] = cachedFile{Secrets: r.secrets, ELF: r.elf, Interp: r.interp, GoPkgs: r.goPkgs}
	}
	return writeCacheEntry(c.path(g), files)
}

// text is a text a scan looks for secrets in that is not a file of the
// tree: a string of an image's configuration, the spec, the kernel
// command line.
type text struct {
	where string
	data  []byte
	// str marks a string rather than a file's text (secrets.ScanString).
	str bool
}

// find scans t for secrets.
func (t text) find() []secrets.Finding {
	if t.str {
		return secrets.ScanString(t.where, string(t.data))
	}
	return secrets.Scan(t.where, t.data, true)
}

// textSecrets are the secrets in each of texts, taken from the entry all
// of them key when c holds it, else found and kept there (c may be nil).
func (c *Cache) textSecrets(texts []text) [][]secrets.Finding {
	var p string
	if c != nil {
		h := sha256.New()
		fmt.Fprintf(h, "%s\n%s\ntexts\n", cacheFormat, c.version)
		for _, t := range texts {
			fmt.Fprintf(h, "%d %t %d %s\x00", len(t.where), t.str, len(t.data), t.where)
			h.Write(t.data)
		}
		p = filepath.Join(c.dir, strings.TrimPrefix(inlineGroup, "sha256:"), "texts-"+hex.EncodeToString(h.Sum(nil)))
		var found [][]secrets.Finding
		if readCacheEntry(p, &found) && len(found) == len(texts) {
			return found
		}
	}
	found := make([][]secrets.Finding, len(texts))
	for i, t := range texts {
		found[i] = t.find()
	}
	if c != nil {
		// A cache that cannot be written costs the next build a scan.
		_ = writeCacheEntry(p, found)
	}
	return found
}

// readCacheEntry decodes the entry at p into v and reports whether it could: a
// missing, oversized or corrupt entry, or one whose sum does not match,
// is not read.
func readCacheEntry(p string, v any) bool {
	f, err := os.Open(p)
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
	return json.Unmarshal(body, v) == nil
}

// writeCacheEntry writes v as the entry at p, with the sha256 of its body on
// the first line: under a temporary name, then renamed, so a reader never
// sees a part of one. It is not synced: an entry a power cut spoils fails
// its sum and is made again.
func writeCacheEntry(p string, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if len(body) >= maxCacheEntry-65 {
		return nil // too large to be read back: not kept
	}
	sum := sha256.Sum256(body)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".tmp-*")
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
