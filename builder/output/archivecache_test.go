package output

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/bulkhead-dev/bulkhead/builder/rootfs"
	"github.com/bulkhead-dev/bulkhead/internal/stamp"
	"github.com/bulkhead-dev/bulkhead/internal/test/testfile"
)

// cacheTree is a tree whose archive compresses to several zstd blocks.
func cacheTree(seed byte) *rootfs.Tree {
	data := make([]byte, 1<<20)
	rand.NewChaCha8([32]byte{byte(seed)}).Read(data[:len(data)/2]) // half noise, half zeros
	t := rootfs.New()
	t.Put(&rootfs.Entry{Path: "bulkhead/root.img", Kind: rootfs.KindFile, Mode: 0o444, Size: int64(len(data)), Content: rootfs.Content{Data: data}})
	return t
}

func plainInitrd(t *testing.T, tr *rootfs.Tree) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := WriteInitrd(context.Background(), &b, tr); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func cachedInitrd(t *testing.T, c *ArchiveCache, tr *rootfs.Tree, key string) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := WriteCachedInitrd(context.Background(), &b, tr, c, key); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestArchiveCacheHit: a miss writes what WriteInitrd writes and keeps it;
// a hit serves the kept bytes, which it checked; another program version
// or key is another entry.
func TestArchiveCacheHit(t *testing.T) {
	dir := t.TempDir()
	c := OpenArchiveCache(dir, "v1", nil)
	tr := cacheTree(1)
	want := plainInitrd(t, tr)
	if got := cachedInitrd(t, c, tr, "k"); !bytes.Equal(got, want) {
		t.Fatal("a miss wrote other bytes than WriteInitrd")
	}
	entry := c.path("k", DefaultZstdLevel)
	if kept, err := os.ReadFile(entry); err != nil || !bytes.Equal(kept, want) {
		t.Fatalf("the cache keeps %d bytes (%v), want the archive's %d", len(kept), err, len(want))
	}
	if err := checkEntry(t, entry, tr); err != nil {
		t.Fatalf("the entry a miss kept fails the check: %v", err)
	}
	if got := cachedInitrd(t, c, tr, "k"); !bytes.Equal(got, want) {
		t.Fatal("a hit differs from the miss")
	}
	// A hit serves the entry: one written by another (valid) compression
	// is served as it is, since it decompresses to the same archive.
	var other bytes.Buffer
	enc, _ := zstd.NewWriter(&other, zstd.WithEncoderLevel(zstd.SpeedBestCompression), zstd.WithWindowSize(1<<20), zstd.WithEncoderCRC(true), zstd.WithEncoderConcurrency(1))
	if err := writeCPIOTo(context.Background(), enc, tr); err != nil {
		t.Fatal(err)
	}
	enc.Close()
	if bytes.Equal(other.Bytes(), want) {
		t.Fatal("the other compression wrote the same bytes")
	}
	os.WriteFile(entry, other.Bytes(), 0o600)
	if got := cachedInitrd(t, c, tr, "k"); !bytes.Equal(got, other.Bytes()) {
		t.Fatal("a hit did not serve the cache entry")
	}
	if c.path("k", DefaultZstdLevel) == OpenArchiveCache(dir, "v2", nil).path("k", DefaultZstdLevel) || c.path("k", 1) == c.path("j", 1) || c.path("k", 1) == c.path("k", 3) {
		t.Fatal("version, key and level do not all name the entry")
	}
	// Other compressions and microcode do not use the cache.
	var b bytes.Buffer
	if err := WriteCachedInitrd(context.Background(), &b, tr, c, "gz", WithCompression(Gzip)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(c.path("gz", DefaultZstdLevel)); err == nil {
		t.Error("a gzip archive was cached")
	}
	// No cache: the archive still comes out.
	if got := cachedInitrd(t, nil, tr, "k"); !bytes.Equal(got, want) {
		t.Error("without a cache the archive differs")
	}
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o644)
	if OpenArchiveCache(filepath.Join(file, "cache"), "v1", nil) != nil || OpenArchiveCache(dir, "", nil) != nil {
		t.Error("a cache under a file, or for an unknown version, was opened")
	}
}

// TestArchiveCacheRefusesHostileEntries: an entry that is not one clean
// zstd frame of exactly the tree's archive is never served: the build
// writes the right archive and the entry is replaced by it.
func TestArchiveCacheRefusesHostileEntries(t *testing.T) {
	tr := cacheTree(1)
	want := plainInitrd(t, tr)
	otherArchive := plainInitrd(t, cacheTree(2))
	extra := plainInitrd(t, func() *rootfs.Tree {
		x := rootfs.New()
		x.Put(&rootfs.Entry{Path: "init", Kind: rootfs.KindFile, Mode: 0o755, Size: 3, Content: rootfs.Content{Data: []byte("sh\n")}})
		return x
	}())
	var cpio bytes.Buffer
	writeCPIOTo(context.Background(), &cpio, tr)
	noCRC := func() []byte {
		var b bytes.Buffer
		enc, _ := zstd.NewWriter(&b, zstd.WithEncoderCRC(false), zstd.WithEncoderConcurrency(1))
		enc.Write(cpio.Bytes())
		enc.Close()
		return b.Bytes()
	}()
	// The archive, then another one, in one frame: the kernel unpacks
	// both.
	moreInFrame := func() []byte {
		var b bytes.Buffer
		enc, _ := newZstd(&b, DefaultZstdLevel, 1)
		enc.Write(cpio.Bytes())
		writeCPIOTo(context.Background(), enc, func() *rootfs.Tree {
			x := rootfs.New()
			x.Put(&rootfs.Entry{Path: "init", Kind: rootfs.KindFile, Mode: 0o755, Size: 3, Content: rootfs.Content{Data: []byte("sh\n")}})
			return x
		}())
		enc.Close()
		return b.Bytes()
	}()
	bigWindow := bytes.Clone(want)
	bigWindow[5] = 0xa0 // window 2^(10+20): a gigabyte
	lastCleared := func() []byte {
		// The first block no longer claims to be the last: the frame
		// runs on into what follows.
		b := bytes.Clone(want)
		return b[:len(b)/2]
	}()
	skippable := append([]byte{0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0, 'b', 'a', 'd', '!'}, want...)
	for _, tc := range []struct {
		name string
		body []byte
	}{
		{"empty", nil},
		{"cut short", want[:len(want)-5]},
		{"cut in a block", lastCleared},
		{"another tree's archive", otherArchive},
		{"a second archive after the frame", append(bytes.Clone(want), extra...)},
		{"zeros after the frame", append(bytes.Clone(want), make([]byte, 512)...)},
		{"no checksum", noCRC},
		{"the archive and another in one frame", moreInFrame},
		{"a gigabyte window", bigWindow},
		{"a skippable frame first", skippable},
		{"uncompressed", cpio.Bytes()},
		{"larger than the bound", append(bytes.Clone(want), make([]byte, 4<<20)...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			c := OpenArchiveCache(dir, "v1", nil)
			entry := c.path("k", DefaultZstdLevel)
			if err := os.WriteFile(entry, tc.body, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := checkEntry(t, entry, tr); err == nil {
				t.Fatal("the entry passed the check")
			}
			if got := cachedInitrd(t, c, tr, "k"); !bytes.Equal(got, want) {
				t.Fatal("the build served the entry instead of the archive")
			}
			if kept, _ := os.ReadFile(entry); !bytes.Equal(kept, want) {
				t.Fatal("the entry was not replaced by the archive")
			}
		})
	}
	t.Run("a directory", func(t *testing.T) {
		dir := t.TempDir()
		c := OpenArchiveCache(dir, "v1", nil)
		os.Mkdir(c.path("k", DefaultZstdLevel), 0o755)
		if got := cachedInitrd(t, c, tr, "k"); !bytes.Equal(got, want) {
			t.Fatal("the archive differs")
		}
	})
}

// TestArchiveCacheStampedHit: an entry checked once is stamped and not
// decompressed again while the stamp holds; once the entry changes, it is
// checked again, and a bad one is replaced.
func TestArchiveCacheStampedHit(t *testing.T) {
	dir := t.TempDir()
	// A clock past the settle margin: what the test writes can be stamped
	// at once.
	book := stamp.Open(filepath.Join(dir, "stamps"), filepath.Join(dir, "stamp.key"),
		stamp.WithClock(func() time.Time { return time.Now().Add(time.Minute) }))
	c := OpenArchiveCache(filepath.Join(dir, "cache"), "v1", book)
	tr := cacheTree(1)
	want := plainInitrd(t, tr)
	for i, checks := range []int{0, 1, 1, 1} {
		if got := cachedInitrd(t, c, tr, "k"); !bytes.Equal(got, want) {
			t.Fatalf("build %d: the archive differs", i+1)
		}
		if c.checked != checks {
			t.Fatalf("build %d: %d entries checked, want %d", i+1, c.checked, checks)
		}
	}
	// The stamp is for this entry: another tree under another key is
	// checked.
	if got := cachedInitrd(t, c, cacheTree(2), "j"); !bytes.Equal(got, plainInitrd(t, cacheTree(2))) || c.checked != 1 {
		t.Fatalf("a miss under another key: %d checks", c.checked)
	}
	// A changed entry loses its stamp, is checked, refused and replaced.
	entry := c.path("k", DefaultZstdLevel)
	testfile.FlipByte(t, entry, int64(len(want)/2))
	if got := cachedInitrd(t, c, tr, "k"); !bytes.Equal(got, want) || c.checked != 2 {
		t.Fatalf("a changed entry: served %d bytes after %d checks", len(got), c.checked)
	}
	if kept, _ := os.ReadFile(entry); !bytes.Equal(kept, want) {
		t.Fatal("the changed entry was not replaced")
	}
}

// TestArchiveCacheKeepsFour: the cache holds the four entries used last.
func TestArchiveCacheKeepsFour(t *testing.T) {
	dir := t.TempDir()
	c := OpenArchiveCache(dir, "v1", nil)
	tr := cacheTree(1)
	// a, b, c, d; a again (a hit); e: b is the one used longest ago.
	for _, k := range []string{"a", "b", "c", "d", "a", "e"} {
		// File times come from a clock that ticks every few milliseconds.
		time.Sleep(20 * time.Millisecond)
		cachedInitrd(t, c, tr, k)
	}
	names := slices.DeleteFunc(testfile.Names(t, dir), func(n string) bool { return n == usedDir })
	if len(names) != archiveCacheKeep {
		t.Fatalf("%d entries, want %d: %v", len(names), archiveCacheKeep, names)
	}
	for _, k := range []string{"a", "c", "d", "e"} {
		if _, err := os.Stat(c.path(k, DefaultZstdLevel)); err != nil {
			t.Errorf("entry %s, among the last four used, is gone", k)
		}
	}
}

// checkEntry is check on the file at p.
func checkEntry(t *testing.T, p string, tr *rootfs.Tree) error {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	return check(context.Background(), f, tr)
}
