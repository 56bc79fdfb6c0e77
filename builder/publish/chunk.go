// Package publish turns an update bundle into an OCI artifact that any
// registry can serve, and measures what a host would fetch from it: the
// bundle's payloads are cut into content-defined chunks (internal/update/
// chunk), each compressed alone and packed into a few blobs, beside the
// chunk index, the signed manifest (in the artifact) and its DSSE
// envelope (as a cosign-style signature: a `sha256-<digest>.sig` tag whose
// manifest names the artifact as its subject, so a registry with the
// referrers API lists it too). AddDeltas adds, for hosts running one
// earlier version, deltas of the changed root chunks against that
// version's root. The host's side is internal/update/pull.
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

// PackSize is the size past which a pack is closed and the next begun.
const PackSize = 32 << 20

// Artifact is a bundle cut into chunks, ready to push.
type Artifact struct {
	Manifest *update.Manifest
	// ManifestJSON is the signed manifest (the envelope's payload) and
	// Envelope the DSSE envelope's JSON.
	ManifestJSON, Envelope []byte
	Index                  *chunk.Index
	// Packs are the pack files, in the index's order, and DeltaPacks
	// those of its deltas (AddDeltas).
	Packs, DeltaPacks []string
	bundle            string
}

// Deltas is how many deltas AddDeltas stored.
func (a *Artifact) Deltas() int {
	if a.Index.Deltas == nil {
		return 0
	}
	n := 0
	for _, p := range a.Index.Deltas.Packs {
		n += len(p.Chunks)
	}
	return n
}

// Size is what a host fetching everything would download: the packs,
// the index, the manifest and the envelope.
func (a *Artifact) Size() (int64, error) {
	ib, err := a.Index.Marshal()
	if err != nil {
		return 0, err
	}
	n := int64(len(ib) + len(a.ManifestJSON) + len(a.Envelope))
	for _, p := range a.Index.Packs {
		n += p.Size
	}
	return n, nil
}

// Chunk reads the bundle at path (checking every payload against its
// manifest, not its signature) and writes its packs into dir.
func Chunk(ctx context.Context, path, dir string, p chunk.Params) (*Artifact, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("chunking bundle: %w", err)
	}
	defer f.Close()
	r, env, err := update.InspectReader(f)
	if err != nil {
		return nil, fmt.Errorf("chunking bundle %s: %w", path, err)
	}
	pk, err := newPacker(dir, p)
	if err != nil {
		return nil, fmt.Errorf("chunking bundle: %w", err)
	}
	defer pk.close()
	if err := chunkPayloads(ctx, r, pk); err != nil {
		return nil, fmt.Errorf("chunking bundle %s: %w", path, err)
	}
	if err := pk.finish(); err != nil {
		return nil, fmt.Errorf("chunking bundle: %w", err)
	}
	envJSON, err := encodeEnvelope(env)
	if err != nil {
		return nil, err
	}
	a := &Artifact{Manifest: r.Manifest(), ManifestJSON: env.Payload, Envelope: envJSON, Index: pk.index, Packs: pk.packs.files, bundle: path}
	if err := a.Index.Check(); err != nil {
		return nil, err
	}
	return a, nil
}

// chunkPayloads cuts each payload: the root's file system (not its
// verity tree, which a host derives), the kernel and the initrd.
func chunkPayloads(ctx context.Context, r *update.Reader, pk *packer) error {
	params, err := r.Manifest().Params()
	if err != nil {
		return err
	}
	for {
		pl, pr, err := r.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		size := pl.Size
		if pl.Name == update.PayloadRoot {
			size = int64(params.DataBlocks) * verity.BlockSize
		}
		if err := pk.component(ctx, pl.Name, io.LimitReader(pr, size)); err != nil {
			return fmt.Errorf("payload %s: %w", pl.Name, err)
		}
	}
}

// packer compresses chunks one by one into pack files, once each.
type packer struct {
	packs packFiles
	zw    *zstd.Encoder
	index *chunk.Index
	seen  map[string]int // chunk digest -> its number in Refs order
	n     int
	buf   []byte
}

func newPacker(dir string, p chunk.Params) (*packer, error) {
	zw, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBetterCompression), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return nil, err
	}
	x := &chunk.Index{Format: chunk.IndexFormat, Params: p, Encoding: chunk.EncodingZstd}
	return &packer{packs: packFiles{dir: dir, prefix: "pack"}, zw: zw, index: x, seen: map[string]int{}}, nil
}

func (pk *packer) component(ctx context.Context, name string, r io.Reader) error {
	c := chunk.Component{Name: name}
	err := chunk.Split(r, pk.index.Params, func(_ int64, b []byte) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		i, err := pk.add(b)
		c.Chunks = append(c.Chunks, i)
		c.Size += int64(len(b))
		return err
	})
	pk.index.Components = append(pk.index.Components, c)
	return err
}

// add stores b unless an equal chunk is stored, and returns its number.
func (pk *packer) add(b []byte) (int, error) {
	sum := chunk.Sum(b)
	if i, ok := pk.seen[sum]; ok {
		return i, nil
	}
	pk.buf = pk.zw.EncodeAll(b, pk.buf[:0])
	if err := pk.packs.write(chunk.Chunk{SHA256: sum, Size: int64(len(b))}, pk.buf); err != nil {
		return 0, err
	}
	pk.seen[sum] = pk.n
	pk.n++
	return pk.n - 1, nil
}

// finish closes the last pack and puts the packs into the index.
func (pk *packer) finish() error {
	err := pk.packs.finish()
	pk.index.Packs = pk.packs.packs
	return err
}

func (pk *packer) close() {
	pk.packs.close()
	pk.zw.Close()
}

// packFiles writes stored chunks one after another into numbered files
// (PREFIX-000, ...) of about PackSize each, and names each pack by its
// digest when it is closed.
type packFiles struct {
	dir, prefix string
	cur         *os.File
	files       []string
	packs       []chunk.Pack
}

// write appends a chunk's stored bytes to the current pack, starting one
// when there is none or it is full, and records c at its place.
func (pf *packFiles) write(c chunk.Chunk, stored []byte) error {
	if pf.cur == nil || pf.packs[len(pf.packs)-1].Size >= PackSize {
		if err := pf.finish(); err != nil {
			return err
		}
		f, err := os.Create(filepath.Join(pf.dir, fmt.Sprintf("%s-%03d", pf.prefix, len(pf.files))))
		if err != nil {
			return err
		}
		pf.cur, pf.files = f, append(pf.files, f.Name())
		pf.packs = append(pf.packs, chunk.Pack{})
	}
	if _, err := pf.cur.Write(stored); err != nil {
		return err
	}
	p := &pf.packs[len(pf.packs)-1]
	c.Offset, c.Stored = p.Size, int64(len(stored))
	p.Chunks = append(p.Chunks, c)
	p.Size += c.Stored
	return nil
}

// finish closes the current pack, if any, and names it by its digest.
func (pf *packFiles) finish() error {
	if pf.cur == nil {
		return nil
	}
	err := pf.cur.Close()
	pf.cur = nil
	if err != nil {
		return err
	}
	d, err := fileDigest(pf.files[len(pf.files)-1])
	pf.packs[len(pf.packs)-1].Digest = d
	return err
}

// close releases the current pack's file after a failure.
func (pf *packFiles) close() {
	if pf.cur != nil {
		pf.cur.Close()
	}
}
