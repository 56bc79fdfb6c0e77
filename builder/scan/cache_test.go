package scan

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulkhead-dev/bulkhead/builder/rootfs"
)

// cacheHost is the test host with a key in a layer, and a vulnerability
// database: every kind of per-file finding (secrets, ELF, interpreters,
// Go modules) reaches the report.
func cacheHost(t *testing.T) Input {
	t.Helper()
	compress := goDep(t, "github.com/klauspost/compress")
	in := testHost(t, hostOpts{debVersion: "3.0.11-1~deb12u2", layerKey: true, policy: strings.Replace(gatePolicy, "%s", "", 1)})
	in.VulnDB = writeVulnDB(t, bump(compress), "3.0.13-1~deb12u1")
	return in
}

// reportBytes are the files a report writes: what a build ships.
func reportBytes(t *testing.T, r *Report) []byte {
	t.Helper()
	j, err := r.JSON()
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Join([][]byte{j, r.SPDX, r.CycloneDX, []byte(strings.Join(r.Failed(), "\n"))}, []byte("\n--\n"))
}

// cacheEntries lists the entries under dir.
func cacheEntries(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// TestCacheSameReport: a scan that fills the cache and one that reads it
// give the bytes of a scan without one, findings in layers included.
func TestCacheSameReport(t *testing.T) {
	in := cacheHost(t)
	want := reportBytes(t, run(t, in))
	if !bytes.Contains(want, []byte("etc/app/deploy.key")) {
		t.Fatal("the key in the layer is not found without the cache")
	}
	dir := t.TempDir()
	in.Cache = newCache(dir, "v1")
	for _, pass := range []string{"cold", "warm"} {
		if got := reportBytes(t, run(t, in)); !bytes.Equal(got, want) {
			t.Fatalf("%s cache: the report differs from an uncached scan:\n%s\nwant:\n%s", pass, got, want)
		}
	}
	// One entry per layer the tree reads files from (kernel, init, app),
	// one for the files the tree holds the bytes of (the spec's), one for
	// the texts (the images' configurations, the spec, the command line).
	if n := len(cacheEntries(t, dir)); n != 5 {
		t.Errorf("%d cache entries, want 5: %v", n, cacheEntries(t, dir))
	}
}

// TestCacheIsRead: a warm scan takes a layer's findings from its entry,
// not from the layer (an entry whose sum matches is what a read found).
func TestCacheIsRead(t *testing.T) {
	in := cacheHost(t)
	dir := t.TempDir()
	in.Cache = newCache(dir, "v1")
	run(t, in)
	rewriteEntry(t, entryHolding(t, dir, "deploy.key"), "etc/app/deploy.key", "etc/app/cached.key")
	if got := reportBytes(t, run(t, in)); !bytes.Contains(got, []byte("etc/app/cached.key")) {
		t.Fatal("the warm scan did not take its findings from the cache")
	}
}

// TestCacheTextsAreRead: a warm scan takes the secrets of the texts that
// are not files (image configurations, the spec, the command line) from
// their entry; other texts make another entry.
func TestCacheTextsAreRead(t *testing.T) {
	in := cacheHost(t)
	want := reportBytes(t, run(t, in))
	if !bytes.Contains(want, []byte("GITHUB_TOKEN")) {
		t.Fatal("the token in the image's configuration is not found without the cache")
	}
	dir := t.TempDir()
	in.Cache = newCache(dir, "v1")
	run(t, in)
	p := entryHolding(t, dir, "GITHUB_TOKEN")
	if !strings.HasPrefix(filepath.Base(p), "texts-") {
		t.Fatalf("the configuration's token is kept in %s", p)
	}
	rewriteEntry(t, p, "env GITHUB_TOKEN", "env CACHED_TOKEN")
	if got := reportBytes(t, run(t, in)); !bytes.Contains(got, []byte("env CACHED_TOKEN")) {
		t.Fatal("the warm scan did not take the texts' secrets from the cache")
	}
	in.Cmdline += " quiet"
	if got := reportBytes(t, run(t, in)); bytes.Contains(got, []byte("CACHED_TOKEN")) || !bytes.Contains(got, []byte("env GITHUB_TOKEN")) {
		t.Fatal("another command line took the old texts' entry")
	}
}

// rewriteEntry replaces old with new in the body of the cache entry at p
// and gives it the sum of its new body: an entry a read would find as
// valid as one a scan wrote.
func rewriteEntry(t *testing.T, p, old, new string) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	_, body, _ := bytes.Cut(b, []byte{'\n'})
	body = bytes.ReplaceAll(body, []byte(old), []byte(new))
	if err := os.WriteFile(p, fmt.Appendf(nil, "%x\n%s", sha256.Sum256(body), body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// entryHolding is the cache entry in dir whose text holds s.
func entryHolding(t *testing.T, dir, s string) string {
	t.Helper()
	for _, p := range cacheEntries(t, dir) {
		if b, _ := os.ReadFile(p); bytes.Contains(b, []byte(s)) {
			return p
		}
	}
	t.Fatalf("no cache entry holds %q", s)
	return ""
}

// TestCacheCorruptEntry: an entry that is damaged, cut, emptied, too
// large or of another shape is not trusted: the layer is read again and
// the entry rewritten.
func TestCacheCorruptEntry(t *testing.T) {
	in := cacheHost(t)
	want := reportBytes(t, run(t, in))
	for name, spoil := range map[string]func([]byte) []byte{
		"flipped byte": func(b []byte) []byte { b[bytes.Index(b, []byte("deploy.key"))] ^= 1; return b },
		"cut":          func(b []byte) []byte { return b[:len(b)/2] },
		"empty":        func([]byte) []byte { return nil },
		"no sum line":  func(b []byte) []byte { return bytes.ReplaceAll(b, []byte{'\n'}, nil) },
		"too large":    func(b []byte) []byte { return append(b, make([]byte, maxCacheEntry)...) },
		"other shape": func([]byte) []byte {
			body := []byte(`[{"s":[{"rule":"private-key","where":"elsewhere"}]}]`)
			return fmt.Appendf(nil, "%x\n%s", sha256.Sum256(body), body)
		},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			in.Cache = newCache(dir, "v1")
			run(t, in)
			p := entryHolding(t, dir, "deploy.key")
			good, _ := os.ReadFile(p)
			os.WriteFile(p, spoil(bytes.Clone(good)), 0o644)
			if got := reportBytes(t, run(t, in)); !bytes.Equal(got, want) {
				t.Fatalf("a %s entry changed the report:\n%s", name, got)
			}
			if again, _ := os.ReadFile(p); !bytes.Equal(again, good) {
				t.Fatalf("the %s entry was not rewritten", name)
			}
		})
	}
}

// TestCacheKey: another scanner version, or another set of files from the
// same layer, makes another entry; the same inputs make the same one.
func TestCacheKey(t *testing.T) {
	in := cacheHost(t)
	dir := t.TempDir()
	in.Cache = newCache(dir, "v1")
	run(t, in)
	run(t, in)
	if n := len(cacheEntries(t, dir)); n != 5 {
		t.Fatalf("%d entries after two scans of the same host, want 5", n)
	}
	in.Cache = newCache(dir, "v2")
	run(t, in)
	if n := len(cacheEntries(t, dir)); n != 10 {
		t.Fatalf("%d entries after a scan by another version, want 10", n)
	}
	// The app layer's files under another name: a new entry for that
	// layer alone.
	tree := in.Tree.Clone()
	e := tree.Get("containers/services/app/lower/etc/app/deploy.key")
	if e == nil {
		t.Fatal("no deploy.key in the tree")
	}
	moved := *e
	moved.Path = "containers/services/app/lower/etc/app/other.key"
	tree.Remove(e.Path)
	tree.Put(&moved)
	in.Tree = tree
	r := run(t, in)
	if n := len(cacheEntries(t, dir)); n != 11 {
		t.Fatalf("%d entries after moving a file, want 11", n)
	}
	if got := reportBytes(t, r); !bytes.Contains(got, []byte("etc/app/other.key")) || bytes.Contains(got, []byte("etc/app/deploy.key")) {
		t.Fatal("the moved file's finding is not reported at its new path")
	}
	// A file the spec writes, with other bytes: a new entry for those
	// files alone, and what the new bytes hold is found.
	tree = in.Tree.Clone()
	var spec *rootfs.Entry
	tree.Walk(func(e *rootfs.Entry) error {
		if spec == nil && e.Kind == rootfs.KindFile && e.Content.Blob == "" && bytes.Contains(e.Content.Data, []byte("PRIVATE KEY")) {
			spec = e
		}
		return nil
	})
	if spec == nil {
		t.Fatal("no file of the spec's holds the key")
	}
	changed := spec.Copy()
	changed.Content.Data = bytes.ReplaceAll(spec.Content.Data, []byte("PRIVATE KEY"), []byte("PUBLIC NOTE"))
	tree.Put(changed)
	in.Tree = tree
	before := reportBytes(t, r)
	r = run(t, in)
	if n := len(cacheEntries(t, dir)); n != 12 {
		t.Fatalf("%d entries after changing a file of the spec's, want 12", n)
	}
	if got := reportBytes(t, r); bytes.Count(got, []byte(spec.Path)) >= bytes.Count(before, []byte(spec.Path)) {
		t.Fatalf("the key taken out of %s is still reported", spec.Path)
	}
}

// TestOpenCacheUnwritable: a cache directory that cannot be made is no
// cache (a read-only store still builds); one that can is a cache.
func TestOpenCacheUnwritable(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if c := OpenCache(filepath.Join(file, "cache")); c != nil {
		t.Fatal("a cache under a regular file was opened")
	}
	if c := OpenCache(filepath.Join(t.TempDir(), "cache")); c == nil {
		t.Fatal("no cache in a writable directory")
	}
}
