package pull

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"slices"
	"sync/atomic"
	"time"

	"github.com/bulkhead-dev/bulkhead/internal/host/apply"
	"github.com/bulkhead-dev/bulkhead/internal/update"
	"github.com/bulkhead-dev/bulkhead/internal/update/chunk"
	"github.com/bulkhead-dev/bulkhead/internal/verity"
)

// Prepare fetches the index and every chunk the host lacks into the
// cache, after Verify and the apply's checks; it changes neither slot nor
// the ESP (apply.Payloads).
func (u *Update) Prepare(ctx context.Context, t apply.Target) error {
	if u.m == nil {
		return errors.New("pulling update: not verified")
	}
	if err := u.fetchIndex(ctx); err != nil {
		return err
	}
	if s, ok := targetSeed(t); ok {
		u.o.seeds = append(u.o.seeds, s)
	}
	u.where = map[string]location{}
	if err := u.scanCache(u.need); err != nil {
		return err
	}
	u.o.progress("looking for chunks on the host")
	begin := time.Now()
	if err := u.scanSeeds(ctx, u.need); err != nil {
		return err
	}
	if err := u.keepVolatile(ctx, u.need); err != nil {
		return err
	}
	u.stats.ChunksLocal, u.stats.Scan = len(u.where), time.Since(begin)
	u.o.progress(fmt.Sprintf("%d of %d chunks on the host; fetching the others", len(u.where), len(u.need)))
	begin = time.Now()
	if err := u.fetchDeltas(ctx); err != nil {
		return err
	}
	err := u.fetchMissing(ctx, u.need)
	u.stats.Fetch = time.Since(begin)
	return err
}

// fetchIndex fetches the chunk index and checks it against the manifest.
func (u *Update) fetchIndex(ctx context.Context) error {
	d := u.layers[1]
	if d.Size > chunk.MaxIndex {
		return fmt.Errorf("chunk index of %d bytes, at most %d", d.Size, chunk.MaxIndex)
	}
	b, err := u.blob(ctx, d.Digest, chunk.MaxIndex)
	if err != nil {
		return err
	}
	x, err := chunk.ParseIndex(b)
	if err != nil {
		return err
	}
	if err := u.checkIndex(x); err != nil {
		return fmt.Errorf("checking chunk index: %w", err)
	}
	packs := x.Packs
	if x.Deltas != nil {
		packs = append(slices.Clone(packs), x.Deltas.Packs...)
	}
	for _, p := range packs {
		if !u.hasLayer(p.Digest) {
			return fmt.Errorf("checking chunk index: pack %s is not in the artifact", p.Digest)
		}
	}
	u.index, u.need = x, map[string]int64{}
	refs := x.Refs()
	for _, c := range x.Components {
		for _, i := range c.Chunks {
			ch := x.Packs[refs[i].Pack].Chunks[refs[i].Chunk]
			u.need[ch.SHA256] = ch.Size
		}
	}
	return nil
}

// checkIndex makes sure the index cuts exactly the manifest's payloads,
// in order: the root's file system (not its tree), then the kernel and
// the initrd, or the unified kernel image.
func (u *Update) checkIndex(x *chunk.Index) error {
	components := make([]string, len(u.m.Payloads))
	for i, p := range u.m.Payloads {
		components[i] = p.Name
	}
	if len(x.Components) != len(components) {
		return fmt.Errorf("%d components, want %d", len(x.Components), len(components))
	}
	for i, name := range components {
		c := x.Components[i]
		if c.Name != name || c.Size != u.componentSize(name) {
			return fmt.Errorf("component %s of %d bytes, want %s of %d", c.Name, c.Size, name, u.componentSize(name))
		}
	}
	return nil
}

func (u *Update) componentSize(name string) int64 {
	if name == update.PayloadRoot {
		p, _ := u.m.Params()
		return int64(p.DataBlocks) * verity.BlockSize
	}
	p, _ := u.m.Payload(name)
	return p.Size
}

func (u *Update) hasLayer(d string) bool {
	for _, l := range u.layers[2:] {
		if l.Digest == d && l.MediaType == PackMediaType {
			return true
		}
	}
	return false
}

// WriteRoot writes the root's file system chunk by chunk, each checked
// again, recomputes the verity tree after it and checks the root hash and
// the whole root image against the signed manifest (apply.Payloads).
func (u *Update) WriteRoot(ctx context.Context, slot apply.Slot) error {
	c, _ := u.index.Component(update.PayloadRoot)
	var off int64
	err := u.each(ctx, c, func(b []byte) error {
		_, err := slot.WriteAt(b, off)
		off += int64(len(b))
		return err
	})
	if err != nil {
		return err
	}
	p, _ := u.m.Params()
	got, err := verity.Format(ctx, slot, off, slot, int64(p.HashStart-1)*verity.BlockSize, p.Salt)
	if err != nil {
		return err
	}
	if !bytes.Equal(got.RootHash, p.RootHash) || got.HashStart != p.HashStart {
		return fmt.Errorf("the assembled root's verity root hash is %x, the signed one %x", got.RootHash, p.RootHash)
	}
	return u.checkRoot(ctx, slot)
}

// checkRoot hashes the root image as written against the manifest.
func (u *Update) checkRoot(ctx context.Context, slot apply.Slot) error {
	root, _ := u.m.Payload(update.PayloadRoot)
	h := sha256.New()
	if _, err := io.Copy(h, apply.ContextReader(ctx, io.NewSectionReader(slot, 0, root.Size))); err != nil {
		return fmt.Errorf("hashing the written root: %w", err)
	}
	if hex.EncodeToString(h.Sum(nil)) != root.SHA256 {
		return fmt.Errorf("the written root: %w", update.ErrDigest)
	}
	return nil
}

// each calls fn with each chunk of c in order, read from where the host
// has it and checked against its digest.
func (u *Update) each(ctx context.Context, c chunk.Component, fn func([]byte) error) error {
	refs := u.index.Refs()
	for _, i := range c.Chunks {
		if err := ctx.Err(); err != nil {
			return err
		}
		ch := u.index.Packs[refs[i].Pack].Chunks[refs[i].Chunk]
		b, err := u.local(ch.SHA256, ch.Size)
		if err != nil {
			return err
		}
		if err := fn(b); err != nil {
			return err
		}
	}
	return nil
}

// Open returns the named payload assembled from its chunks; it ends with
// io.EOF only when the whole matches the signed digest (apply.Payloads).
func (u *Update) Open(ctx context.Context, name string) (io.Reader, error) {
	c, ok := u.index.Component(name)
	p, okp := u.m.Payload(name)
	if !ok || !okp {
		return nil, fmt.Errorf("no payload %s", name)
	}
	return &componentReader{u: u, ctx: ctx, c: c, p: p, refs: u.index.Refs(), h: sha256.New()}, nil
}

// componentReader reads a component chunk by chunk, each checked.
type componentReader struct {
	u    *Update
	ctx  context.Context
	c    chunk.Component
	p    update.Payload
	refs []chunk.Ref
	next int
	buf  []byte
	h    hash.Hash
	err  error
}

func (r *componentReader) Read(b []byte) (int, error) {
	for len(r.buf) == 0 && r.err == nil {
		r.err = r.load()
	}
	if len(r.buf) == 0 {
		return 0, r.err
	}
	n := copy(b, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

// load reads the next chunk, or checks the whole once there is none.
func (r *componentReader) load() error {
	if err := r.ctx.Err(); err != nil {
		return err
	}
	if r.next == len(r.c.Chunks) {
		if err := finalCheck(r.h, r.p); err != nil {
			return err
		}
		return io.EOF
	}
	ref := r.refs[r.c.Chunks[r.next]]
	ch := r.u.index.Packs[ref.Pack].Chunks[ref.Chunk]
	b, err := r.u.local(ch.SHA256, ch.Size)
	if err != nil {
		return err
	}
	r.next++
	r.h.Write(b)
	r.buf = b
	return nil
}

func finalCheck(h hash.Hash, p update.Payload) error {
	if hex.EncodeToString(h.Sum(nil)) != p.SHA256 {
		return fmt.Errorf("payload %s: %w", p.Name, update.ErrDigest)
	}
	return nil
}

// Clean removes the chunk cache: once the update is committed, or to
// start over.
func (u *Update) Clean() error { return os.RemoveAll(u.o.cache) }

// counting counts the bytes of every response body.
type counting struct {
	rt http.RoundTripper
	n  *int64
}

func (c counting) RoundTrip(req *http.Request) (*http.Response, error) {
	rt := c.rt
	if rt == nil {
		rt = http.DefaultTransport
	}
	resp, err := rt.RoundTrip(req)
	if err == nil {
		resp.Body = &countingBody{resp.Body, c.n}
	}
	return resp, err
}

type countingBody struct {
	io.ReadCloser
	n *int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	atomic.AddInt64(b.n, int64(n))
	return n, err
}
