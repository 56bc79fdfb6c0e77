package pull

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"

	"github.com/bulkhead-dev/bulkhead/internal/update/chunk"
)

// deltaWindow is the largest zstd window a delta may use: its
// dictionary (at most chunk.MaxBase) and the chunk.
const deltaWindow = 8 << 20

// baseSeed is the seed holding a delta's base (one not about to be
// overwritten), or -1.
func (u *Update) baseSeed(b chunk.Base) int {
	for i, c := range u.cuts {
		if c != nil && c.Has(b) {
			return i
		}
	}
	return -1
}

// fetchDeltas fetches, for every needed chunk the host lacks and has a
// delta of, the delta instead, decodes it against the running root and
// keeps the chunk when it matches its digest. A delta that fails (cut,
// bad bytes, a base that does not decode it) is asked for again, up to
// the tries allowed; what is still missing then is fetched whole.
func (u *Update) fetchDeltas(ctx context.Context) error {
	if u.index.Deltas == nil {
		return nil
	}
	for range u.o.tries {
		spans := u.missingDeltaSpans()
		if len(spans) == 0 {
			return nil
		}
		for _, s := range spans {
			if err := u.fetchDeltaSpan(ctx, s); ctx.Err() != nil {
				return err
			}
		}
	}
	return nil
}

// missingDeltaSpans groups the deltas of needed chunks the host lacks,
// whose bases it has, into runs of neighbours, as missingSpans does for
// chunks.
func (u *Update) missingDeltaSpans() []span {
	var out []span
	queued := map[string]bool{}
	for p, pk := range u.index.Deltas.Packs {
		var cur *span
		for _, c := range pk.Chunks {
			_, have := u.where[c.SHA256]
			_, needed := u.need[c.SHA256]
			if have || !needed || queued[c.SHA256] || u.baseSeed(*c.Base) < 0 {
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

// fetchDeltaSpan fetches one span of deltas with a range request and
// keeps each chunk its delta makes correctly.
func (u *Update) fetchDeltaSpan(ctx context.Context, s span) error {
	pack := u.index.Deltas.Packs[s.pack]
	rc, err := u.c.BlobRange(ctx, pack.Digest, s.chunks[0].Offset, rangeSize(s.chunks))
	if err != nil {
		return err
	}
	defer rc.Close()
	defer u.syncCache()
	var dict []byte
	for _, c := range s.chunks {
		stored := make([]byte, c.Stored)
		if _, err := io.ReadFull(rc, stored); err != nil {
			return fmt.Errorf("fetching delta pack %s: %w", pack.Digest, err)
		}
		u.stats.DeltaBytes += c.Stored
		b, err := u.decodeDelta(u.baseSeed(*c.Base), c, stored, &dict)
		if err != nil {
			u.stats.Refetched++
			continue
		}
		if err := u.keep(c.SHA256, b); err != nil {
			return err
		}
		u.where[c.SHA256] = location{seed: inCache}
		u.stats.ChunksFetched++
		u.stats.Deltas++
		u.stats.ChunkBytes += c.Stored
	}
	return nil
}

// decodeDelta decodes a delta with its base, read from the seed, as the
// dictionary, and checks the chunk against its digest.
func (u *Update) decodeDelta(seed int, c chunk.Chunk, stored []byte, dict *[]byte) ([]byte, error) {
	if seed < 0 {
		return nil, errors.New("no seed holds the base")
	}
	s := u.o.seeds[seed]
	if c.Base.Offset+c.Base.Size > s.Size {
		return nil, errors.New("base beyond the running root")
	}
	if int64(cap(*dict)) < c.Base.Size {
		*dict = make([]byte, c.Base.Size)
	}
	d := (*dict)[:c.Base.Size]
	if _, err := s.R.ReadAt(d, c.Base.Offset); err != nil {
		return nil, err
	}
	zr, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(deltaWindow),
		zstd.WithDecoderMaxMemory(2*chunk.MaxChunk), zstd.WithDecoderDictRaw(1, d))
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	b, err := zr.DecodeAll(stored, make([]byte, 0, c.Size))
	if err != nil || int64(len(b)) != c.Size || chunk.Sum(b) != c.SHA256 {
		return nil, fmt.Errorf("delta of chunk %s: %w", c.SHA256, ErrChunk)
	}
	return b, nil
}
