package pull

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"

	"github.com/bulkhead-dev/bulkhead/internal/update/chunk"
)

// maxRange bounds the bytes asked for in one range request.
const maxRange = 8 << 20

// ErrChunk means a chunk kept arriving with bytes that do not match its
// digest.
var ErrChunk = errors.New("chunk does not match its digest")

// span is consecutive chunks of one pack, fetched with one request.
type span struct {
	pack   int
	chunks []chunk.Chunk
}

// fetchMissing fetches every needed chunk the host lacks into the cache,
// in rounds: a round asks for every missing chunk; a chunk with bad
// bytes or a cut connection is asked for again in the next round, up to
// the tries allowed.
func (u *Update) fetchMissing(ctx context.Context, need map[string]int64) error {
	zr, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(2*chunk.MaxChunk))
	if err != nil {
		return err
	}
	defer zr.Close()
	bad := map[string]int{}
	var lastErr error
	for round := 0; ; round++ {
		spans := u.missingSpans()
		if len(spans) == 0 {
			return nil
		}
		if round >= u.o.tries+len(bad) && lastErr != nil {
			return lastErr
		}
		progress := false
		for _, s := range spans {
			n, err := u.fetchSpan(ctx, zr, s, bad)
			progress = progress || n > 0
			if err != nil {
				if ctx.Err() != nil || errors.Is(err, ErrChunk) {
					return err
				}
				lastErr = err
			}
		}
		if !progress && round >= u.o.tries {
			return fmt.Errorf("fetching chunks: no progress after %d tries: %w", round+1, lastErr)
		}
	}
}

// missingSpans groups the needed chunks the host lacks by pack into
// runs of neighbours (a chunk stored twice is asked for once).
func (u *Update) missingSpans() []span {
	var out []span
	queued := map[string]bool{}
	for p, pk := range u.index.Packs {
		var cur *span
		for _, c := range pk.Chunks {
			_, have := u.where[c.SHA256]
			_, needed := u.need[c.SHA256]
			if have || !needed || queued[c.SHA256] {
				cur = nil
				continue
			}
			queued[c.SHA256] = true
			if cur == nil || rangeSize(cur.chunks)+c.Stored > maxRange {
				out = append(out, span{pack: p})
				cur = &out[len(out)-1]
			}
			cur.chunks = append(cur.chunks, c)
		}
	}
	return out
}

func rangeSize(cs []chunk.Chunk) int64 {
	var n int64
	for _, c := range cs {
		n += c.Stored
	}
	return n
}

// fetchSpan fetches one span with a range request and keeps each chunk
// that matches its digest. It returns how many it kept; a chunk that
// fails its digest too often is an error wrapping ErrChunk.
func (u *Update) fetchSpan(ctx context.Context, zr *zstd.Decoder, s span, bad map[string]int) (int, error) {
	pack := u.index.Packs[s.pack]
	rc, err := u.c.BlobRange(ctx, pack.Digest, s.chunks[0].Offset, rangeSize(s.chunks))
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	kept := 0
	defer u.syncCache()
	buf := make([]byte, 0, chunk.MaxChunk)
	for _, c := range s.chunks {
		stored := make([]byte, c.Stored)
		if _, err := io.ReadFull(rc, stored); err != nil {
			return kept, fmt.Errorf("fetching pack %s: %w", pack.Digest, err)
		}
		b, err := zr.DecodeAll(stored, buf[:0])
		if err != nil || int64(len(b)) != c.Size || chunk.Sum(b) != c.SHA256 {
			if bad[c.SHA256]++; bad[c.SHA256] >= u.o.tries {
				return kept, fmt.Errorf("chunk %s (pack %s, offset %d): %w, %d times", c.SHA256, pack.Digest, c.Offset, ErrChunk, bad[c.SHA256])
			}
			u.stats.Refetched++
			continue
		}
		if err := u.keep(c.SHA256, b); err != nil {
			return kept, err
		}
		u.where[c.SHA256] = location{seed: inCache}
		u.stats.ChunksFetched++
		u.stats.ChunkBytes += c.Stored
		kept++
	}
	return kept, nil
}

// keep writes a verified chunk into the cache, renamed into place once
// written. The cache is synced once per span (syncCache), not per chunk:
// a power cut may leave a chunk torn under its name, which scanCache
// finds by its digest and drops.
func (u *Update) keep(sum string, b []byte) error {
	final := filepath.Join(u.o.cache, sum)
	f, err := os.CreateTemp(u.o.cache, ".chunk-*")
	if err != nil {
		return fmt.Errorf("keeping chunk %s: %w", sum, err)
	}
	_, err = f.Write(b)
	err = errors.Join(err, f.Close())
	if err == nil {
		err = os.Rename(f.Name(), final)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("keeping chunk %s: %w", sum, err)
	}
	return nil
}

// syncCache makes the chunks kept so far durable (one syncfs for the
// file system holding the cache).
func (u *Update) syncCache() {
	if d, err := os.Open(u.o.cache); err == nil {
		_ = unix.Syncfs(int(d.Fd()))
		d.Close()
	}
}

// local reads a chunk the host has and checks it against its digest.
func (u *Update) local(sum string, size int64) ([]byte, error) {
	l, ok := u.where[sum]
	if !ok {
		return nil, fmt.Errorf("chunk %s: not fetched", sum)
	}
	var b []byte
	var err error
	if l.seed == inCache {
		b, err = readFileLimited(filepath.Join(u.o.cache, sum), size)
	} else {
		b = make([]byte, size)
		_, err = u.o.seeds[l.seed].R.ReadAt(b, l.off)
	}
	if err != nil {
		return nil, fmt.Errorf("reading chunk %s: %w", sum, err)
	}
	if int64(len(b)) != size || chunk.Sum(b) != sum {
		return nil, fmt.Errorf("chunk %s: %w", sum, ErrChunk)
	}
	return b, nil
}

func readFileLimited(path string, size int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readLimited(f, size)
}
