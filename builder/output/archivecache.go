package output

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/bulkhead-dev/bulkhead/builder/rootfs"
	"github.com/bulkhead-dev/bulkhead/internal/stamp"
)

// ArchiveCache keeps zstd-compressed initrd archives (what WriteInitrd
// writes for one tree) in a directory, under a key the caller derives
// from the tree and the program. It trusts nothing it finds there: an
// entry is used only when it is one zstd frame as this package writes
// them (no dictionary, a checksum, a window the kernel takes) and
// decompresses to exactly the archive the tree makes now, compared byte
// for byte. A damaged or planted entry costs a compression and is
// replaced; it is never shipped. The check decompresses, which takes
// about a quarter of the time compressing does; an entry checked before
// that still holds its stamp (internal/stamp: the same file, unchanged
// since, its bytes intact) is not checked again.
//
// Entries are named by the hex of their key's hash; used/ holds an empty
// file of the same name whose time says when the entry was last used.
type ArchiveCache struct {
	dir     string
	version string
	keep    int
	stamps  *stamp.Book
	// checked counts the entries decompressed and compared (tests).
	checked int
}

// archiveCacheKeep is how many entries a cache keeps, the most recently
// used.
const archiveCacheKeep = 4

// archiveCacheFormat changes with the meaning of a key.
const archiveCacheFormat = "bulkhead initrd archive cache 1"

// OpenArchiveCache returns the cache in dir for the program version
// (which belongs in every key: another compressor writes other bytes, and
// a hit must give the bytes a compression would), with the entries
// checked before vouched for by stamps (nil: every hit is checked), or
// nil, no cache, when version is empty or dir cannot be made.
func OpenArchiveCache(dir, version string, stamps *stamp.Book) *ArchiveCache {
	if version == "" || os.MkdirAll(filepath.Join(dir, usedDir), 0o755) != nil {
		return nil
	}
	return &ArchiveCache{dir: dir, version: version, keep: archiveCacheKeep, stamps: stamps}
}

// usedDir is the subdirectory of an archive cache that says when each
// entry was last used: touching the entry itself would change its
// times, and with them lose its stamp.
const usedDir = "used"

// WriteCachedInitrd is WriteInitrd through c: with zstd (and no
// microcode), the compressed archive comes from c when c holds one for
// key that checks out, and what is compressed otherwise is kept there. A
// cache that cannot be read or written only costs time.
func WriteCachedInitrd(ctx context.Context, w io.Writer, t *rootfs.Tree, c *ArchiveCache, key string, opts ...Option) error {
	o, err := newOptions(opts)
	if err != nil {
		return fmt.Errorf("writing initrd: %w", err)
	}
	if c == nil || o.compression != Zstd || o.ucode != nil {
		return WriteInitrd(ctx, w, t, opts...)
	}
	name := c.path(key, o.zstdLevel)
	if f, err := c.open(ctx, name, t); err == nil {
		defer f.Close()
		if _, err := io.Copy(w, f); err != nil {
			return fmt.Errorf("writing initrd: %w", err)
		}
		return nil
	}
	tmp, err := os.CreateTemp(c.dir, ".tmp-*")
	if err != nil {
		return WriteInitrd(ctx, w, t, opts...)
	}
	keep := &tolerantWriter{w: tmp}
	err = WriteInitrd(ctx, io.MultiWriter(w, keep), t, opts...)
	if cerr := tmp.Close(); keep.err == nil {
		keep.err = cerr
	}
	if err != nil || keep.err != nil || os.Rename(tmp.Name(), name) != nil {
		os.Remove(tmp.Name())
		return err
	}
	c.used(name)
	c.evict()
	return nil
}

func (c *ArchiveCache) path(key string, level int) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00zstd %d\x00%s", archiveCacheFormat, c.version, level, key)
	return filepath.Join(c.dir, hex.EncodeToString(h.Sum(nil)))
}

// open returns the entry at name, at its start, when it is t's archive,
// or says why it is not.
func (c *ArchiveCache) open(ctx context.Context, name string, t *rootfs.Tree) (*os.File, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	err = c.stamps.Check(f, stampSubject(filepath.Base(name)), func() error {
		c.checked++
		return check(ctx, f, t)
	})
	if err != nil {
		f.Close()
		return nil, err
	}
	c.used(name)
	return f, nil
}

// stampSubject is what an entry's stamp vouches for: the entry of that
// name, which stands for its key, which names the tree.
func stampSubject(entry string) string { return "initrd archive " + entry }

// used notes that the entry at name was used now: the newest entry, the
// last to be evicted.
func (c *ArchiveCache) used(name string) {
	p := filepath.Join(c.dir, usedDir, filepath.Base(name))
	now := time.Now()
	if os.Chtimes(p, now, now) != nil {
		os.WriteFile(p, nil, 0o644)
	}
}

// check says why f is not t's archive, or nil when it is; it leaves f at
// its start.
func check(ctx context.Context, f *os.File, t *rootfs.Tree) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if limit := compressedBound(t); !st.Mode().IsRegular() || st.Size() > limit {
		return fmt.Errorf("cache entry of %d bytes is not a regular file within %d bytes", st.Size(), limit)
	}
	if err := checkZstdFrame(bufio.NewReader(f)); err != nil {
		return err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	// The window bounds the decoder's memory; what it decodes is compared
	// as it comes, so a stream that runs on is read one byte too far.
	d, err := zstd.NewReader(f, zstd.WithDecoderMaxWindow(maxZstdWindow), zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
	if err != nil {
		return err
	}
	err = sameArchive(ctx, d, t)
	d.Close() // before the seek: the decoder reads f
	if err != nil {
		return err
	}
	_, err = f.Seek(0, io.SeekStart)
	return err
}

// sameArchive says why what r holds is not t's uncompressed archive.
func sameArchive(ctx context.Context, r io.Reader, t *rootfs.Tree) error {
	if err := writeCPIOTo(ctx, &sameWriter{r: r}, t); err != nil {
		return err
	}
	if n, err := r.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		return errors.New("cache entry decompresses to more than the archive")
	}
	return nil
}

// evict removes all but the keep most recently used entries, and
// temporary files a killed build left an hour or more ago.
func (c *ArchiveCache) evict() {
	des, err := os.ReadDir(c.dir)
	if err != nil {
		return
	}
	type entry struct {
		name string
		mod  time.Time
	}
	var entries []entry
	for _, de := range des {
		fi, err := de.Info()
		if err != nil || de.IsDir() {
			continue
		}
		if strings.HasPrefix(de.Name(), ".tmp-") {
			if time.Since(fi.ModTime()) > time.Hour {
				os.Remove(filepath.Join(c.dir, de.Name()))
			}
			continue
		}
		last := fi.ModTime()
		if u, err := os.Stat(filepath.Join(c.dir, usedDir, de.Name())); err == nil && u.ModTime().After(last) {
			last = u.ModTime()
		}
		entries = append(entries, entry{de.Name(), last})
	}
	slices.SortFunc(entries, func(a, b entry) int { return b.mod.Compare(a.mod) })
	for _, e := range entries[min(len(entries), c.keep):] {
		os.Remove(filepath.Join(c.dir, e.name))
		os.Remove(filepath.Join(c.dir, usedDir, e.name))
		c.stamps.Forget(stampSubject(e.name))
	}
}

// compressedBound is the most a zstd archive of t may take: its files,
// a header for each entry, and zstd's worst case of a few bytes per block.
func compressedBound(t *rootfs.Tree) int64 {
	var n int64
	t.Walk(func(e *rootfs.Entry) error {
		n += e.Size + int64(len(e.Path)) + int64(len(e.Link)) + 512
		return nil
	})
	return n + n/64 + 1<<20
}

// writeCPIOTo writes t's uncompressed archive, as WriteInitrd compresses
// it, to w, through a buffer (the cpio writer makes many small writes).
func writeCPIOTo(ctx context.Context, w io.Writer, t *rootfs.Tree) error {
	bw := bufio.NewWriterSize(w, 256<<10)
	if err := writeCPIO(ctx, bw, t); err != nil {
		return err
	}
	return bw.Flush()
}

// sameWriter fails a write that is not what r holds next.
type sameWriter struct {
	r   io.Reader
	buf []byte
}

func (s *sameWriter) Write(p []byte) (int, error) {
	if cap(s.buf) < len(p) {
		s.buf = make([]byte, len(p))
	}
	b := s.buf[:len(p)]
	if _, err := io.ReadFull(s.r, b); err != nil {
		return 0, fmt.Errorf("cache entry ends early: %w", err)
	}
	if !bytes.Equal(b, p) {
		return 0, errors.New("cache entry differs from the archive")
	}
	return len(p), nil
}

// tolerantWriter keeps its first error and drops what comes after it: a
// cache that fills its disk must not fail the build.
type tolerantWriter struct {
	w   io.Writer
	err error
}

func (t *tolerantWriter) Write(p []byte) (int, error) {
	if t.err == nil {
		_, t.err = t.w.Write(p)
	}
	return len(p), nil
}

// checkZstdFrame reads r to its end and says why it is not exactly one
// zstd frame as newZstd writes them (RFC 8878 section 3.1.1): no
// dictionary, a content checksum, a window of at most maxZstdWindow, valid
// block headers, and nothing after the frame. The kernel unpacks whatever
// follows a frame as another archive, so trailing bytes must not pass.
// Blocks are skipped, not decoded.
func checkZstdFrame(r *bufio.Reader) error {
	var hdr [6]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return fmt.Errorf("zstd frame header: %w", err)
	}
	if binary.LittleEndian.Uint32(hdr[:]) != 0xFD2FB528 {
		return errors.New("not a zstd frame")
	}
	desc := hdr[4]
	fcsFlag, single, reserved, checksum, dict := desc>>6, desc&0x20 != 0, desc&0x08 != 0, desc&0x04 != 0, desc&0x03
	if reserved || dict != 0 || !checksum || single {
		return fmt.Errorf("zstd frame descriptor %#x is not the encoder's (one segment, no dictionary, a checksum)", desc)
	}
	wd := hdr[5]
	windowLog := 10 + uint(wd>>3)
	window := uint64(1)<<windowLog + (uint64(1)<<windowLog)/8*uint64(wd&7)
	if window > maxZstdWindow {
		return fmt.Errorf("zstd window of %d bytes is above %d", window, maxZstdWindow)
	}
	if n := [4]int64{0, 2, 4, 8}[fcsFlag]; n > 0 {
		if _, err := r.Discard(int(n)); err != nil {
			return fmt.Errorf("zstd frame content size: %w", err)
		}
	}
	maxBlock := int64(min(window, 128<<10))
	for {
		var bh [3]byte
		if _, err := io.ReadFull(r, bh[:]); err != nil {
			return fmt.Errorf("zstd block header: %w", err)
		}
		v := uint32(bh[0]) | uint32(bh[1])<<8 | uint32(bh[2])<<16
		last, typ, size := v&1 != 0, (v>>1)&3, int64(v>>3)
		switch typ {
		case 1: // RLE: one byte repeated size times
			size = 1
		case 3:
			return errors.New("zstd block of the reserved type")
		}
		if size > maxBlock {
			return fmt.Errorf("zstd block of %d bytes is above %d", size, maxBlock)
		}
		if n, err := io.CopyN(io.Discard, r, size); err != nil {
			return fmt.Errorf("zstd block cut at %d of %d bytes: %w", n, size, err)
		}
		if last {
			break
		}
	}
	if _, err := r.Discard(4); err != nil {
		return fmt.Errorf("zstd content checksum: %w", err)
	}
	if _, err := r.ReadByte(); err != io.EOF {
		return errors.New("bytes after the zstd frame")
	}
	return nil
}
