package publish

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/klauspost/compress/zstd"

	"github.com/bulkhead-dev/bulkhead/internal/update"
	"github.com/bulkhead-dev/bulkhead/internal/update/chunk"
	"github.com/bulkhead-dev/bulkhead/internal/verity"
)

// Delta windows: a new chunk is compressed against the old root's bytes
// from DeltaReach before to DeltaReach after where it would sit in the
// old root (as the nearest chunk before it that both roots share says).
// Measured on examples/minimal.yml's hello with one more handler: its
// 2.14 MB of new chunks took 148 kB as deltas with a 1 MiB reach (the
// binary alone); make bench's host fetches 0.28 MB in all for it.
const DeltaReach = 1 << 20

// deltaWindow is the zstd window deltas are written with (a dictionary
// of 2*DeltaReach plus a chunk fits; a host's decoder allows it).
const deltaWindow = 4 << 20

// AddDeltas stores, for a host running the update in the bundle at
// from, a delta of each new root chunk that comes out smaller than the
// chunk itself (chunk.Deltas), in packs written into dir.
func AddDeltas(ctx context.Context, a *Artifact, from, dir string) error {
	if err := addDeltas(ctx, a, from, dir); err != nil {
		return fmt.Errorf("writing deltas against %s: %w", from, err)
	}
	return nil
}

func addDeltas(ctx context.Context, a *Artifact, from, dir string) error {
	oldRoot, err := extractRoot(from, filepath.Join(dir, "old-root"))
	if err != nil {
		return err
	}
	defer oldRoot.Close()
	newRoot, err := extractRoot(a.bundle, filepath.Join(dir, "new-root"))
	if err != nil {
		return err
	}
	defer newRoot.Close()
	old := map[string]int64{} // chunk digest -> its offset in the old root
	cuts := &chunk.Cuts{}
	err = chunk.Split(io.NewSectionReader(oldRoot, 0, size(oldRoot)), a.Index.Params, func(off int64, b []byte) error {
		sum := chunk.Sum(b)
		old[sum] = off
		cuts.Add(off, int64(len(b)), sum)
		return ctx.Err()
	})
	if err != nil {
		return err
	}
	dw := &deltaWriter{packs: packFiles{dir: dir, prefix: "delta"}, old: oldRoot, cuts: cuts, oldSize: size(oldRoot), plain: storedSizes(a.Index), done: map[string]bool{}}
	defer dw.packs.close()
	var shift int64
	err = chunk.Split(io.NewSectionReader(newRoot, 0, size(newRoot)), a.Index.Params, func(off int64, b []byte) error {
		sum := chunk.Sum(b)
		if o, ok := old[sum]; ok {
			shift = o - off
			return nil
		}
		return dw.add(sum, b, off+shift)
	})
	if err != nil {
		return err
	}
	if err := dw.packs.finish(); err != nil {
		return err
	}
	if len(dw.packs.packs) > 0 {
		a.Index.Deltas = &chunk.Deltas{Packs: dw.packs.packs}
		a.DeltaPacks = dw.packs.files
	}
	return a.Index.Check()
}

// extractRoot writes a bundle's root file system (not its verity tree)
// to path and returns it open.
func extractRoot(bundle, path string) (*os.File, error) {
	f, err := os.Open(bundle)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, _, err := update.InspectReader(f)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", bundle, err)
	}
	p, err := r.Manifest().Params()
	if err != nil {
		return nil, err
	}
	for {
		pl, pr, err := r.Next()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s holds no root image", bundle)
		}
		if err != nil {
			return nil, err
		}
		if pl.Name != update.PayloadRoot {
			continue
		}
		out, err := os.Create(path)
		if err != nil {
			return nil, err
		}
		if _, err := io.Copy(out, io.LimitReader(pr, int64(p.DataBlocks)*verity.BlockSize)); err != nil {
			out.Close()
			return nil, fmt.Errorf("reading %s: %w", bundle, err)
		}
		return out, nil
	}
}

func size(f *os.File) int64 {
	fi, err := f.Stat()
	if err != nil {
		return 0
	}
	return fi.Size()
}

// storedSizes maps each chunk the index stores to its stored size.
func storedSizes(x *chunk.Index) map[string]int64 {
	out := map[string]int64{}
	for _, p := range x.Packs {
		for _, c := range p.Chunks {
			out[c.SHA256] = c.Stored
		}
	}
	return out
}

// deltaWriter compresses new chunks against old bytes into delta packs.
type deltaWriter struct {
	old     io.ReaderAt
	cuts    *chunk.Cuts
	oldSize int64
	plain   map[string]int64
	done    map[string]bool
	dict    []byte
	packs   packFiles
}

// add writes a delta of the chunk b (digest sum) against the old bytes
// around at, if it is smaller than the chunk as stored.
func (dw *deltaWriter) add(sum string, b []byte, at int64) error {
	if dw.done[sum] || dw.plain[sum] == 0 {
		return nil
	}
	dw.done[sum] = true
	lo := max(min(at, dw.oldSize)-DeltaReach, 0)
	base := dw.cuts.Base(lo, min(at+int64(len(b))+DeltaReach, dw.oldSize))
	if base.Size <= 0 || base.Size > chunk.MaxBase {
		return nil
	}
	d, err := encodeDelta(dw.old, base, b, &dw.dict)
	if err != nil {
		return err
	}
	if int64(len(d)) >= dw.plain[sum] {
		return nil
	}
	return dw.packs.write(chunk.Chunk{SHA256: sum, Size: int64(len(b)), Base: &base}, d)
}

// encodeDelta compresses b with the old bytes of base as a raw zstd
// dictionary (dict is a buffer reused between calls).
func encodeDelta(old io.ReaderAt, base chunk.Base, b []byte, dict *[]byte) ([]byte, error) {
	if int64(cap(*dict)) < base.Size {
		*dict = make([]byte, base.Size)
	}
	d := (*dict)[:base.Size]
	if _, err := old.ReadAt(d, base.Offset); err != nil {
		return nil, fmt.Errorf("reading the old root: %w", err)
	}
	zw, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBetterCompression), zstd.WithEncoderConcurrency(1),
		zstd.WithWindowSize(deltaWindow), zstd.WithEncoderDictRaw(1, d))
	if err != nil {
		return nil, err
	}
	defer zw.Close()
	return zw.EncodeAll(b, nil), nil
}
