package publish

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"os"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/bulkhead-dev/bulkhead/internal/update"
	"github.com/bulkhead-dev/bulkhead/internal/update/chunk"
)

// Published is an update as a host sees it before pulling: its chunk
// index and the size of everything else it fetches first.
type Published struct {
	Index *chunk.Index
	// Meta is the bytes fetched before any chunk: the signed manifest,
	// its envelope (with a reference: the signature artifact) and the
	// index.
	Meta int64
}

// Load reads an update from a bundle file (cut into chunks in dir) or,
// when src is not a file, from a registry reference.
func Load(ctx context.Context, src, dir string, opts ...remote.Option) (*Published, error) {
	if _, err := os.Stat(src); err == nil {
		a, err := Chunk(ctx, src, dir, chunk.Default)
		if err != nil {
			return nil, err
		}
		ib, err := a.Index.Marshal()
		if err != nil {
			return nil, err
		}
		return &Published{Index: a.Index, Meta: int64(len(ib) + len(a.ManifestJSON) + len(a.Envelope))}, nil
	}
	ref, err := name.ParseReference(src)
	if err != nil {
		return nil, fmt.Errorf("%s is neither a bundle file nor a reference: %w", src, err)
	}
	return loadRemote(ref, append([]remote.Option{remote.WithContext(ctx)}, opts...))
}

func loadRemote(ref name.Reference, opts []remote.Option) (*Published, error) {
	img, err := remote.Image(ref, opts...)
	if err != nil {
		return nil, fmt.Errorf("reading update %s: %w", ref, err)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) < 2 {
		return nil, fmt.Errorf("reading update %s: not an update artifact", ref)
	}
	b, err := readLayer(layers[1])
	if err != nil {
		return nil, fmt.Errorf("reading chunk index of %s: %w", ref, err)
	}
	x, err := chunk.ParseIndex(b)
	if err != nil {
		return nil, err
	}
	meta := int64(len(b))
	if n, err := layers[0].Size(); err == nil {
		meta += n
	}
	return &Published{Index: x, Meta: meta + signatureSize(ref, img, opts)}, nil
}

// signatureSize is what a host fetches of the artifact's signature: its
// manifest and envelopes (0 when there is none).
func signatureSize(ref name.Reference, img v1.Image, opts []remote.Option) int64 {
	d, err := img.Digest()
	if err != nil {
		return 0
	}
	sig, err := remote.Image(SignatureTag(ref.Context(), d), opts...)
	if err != nil {
		return 0
	}
	n, _ := sig.Size()
	ls, _ := sig.Layers()
	for _, l := range ls {
		if s, err := l.Size(); err == nil {
			n += s
		}
	}
	return n
}

func readLayer(l v1.Layer) ([]byte, error) {
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, chunk.MaxIndex+1))
}

// ComponentPlan is what a host fetches of one component.
type ComponentPlan struct {
	Name string `json:"name"`
	// Chunks and Stored are the component's distinct chunks and their
	// stored (compressed) bytes; Fetch and FetchBytes those the host
	// lacks.
	Chunks     int   `json:"chunks"`
	Stored     int64 `json:"stored"`
	Fetch      int   `json:"fetch"`
	FetchBytes int64 `json:"fetch_bytes"`
}

// Plan is what a host running from fetches for to.
type Plan struct {
	Components []ComponentPlan `json:"components"`
	// Meta is fetched whatever the host has (manifest, signature, index).
	Meta int64 `json:"meta"`
	// Whole is everything the update stores: what a host with nothing
	// in common fetches.
	Whole int64 `json:"whole"`
	// Fetch is the total a host on the old version fetches.
	Fetch int64 `json:"fetch"`
}

// MakePlan compares two updates by chunk: a host on from has every chunk
// of from (in its running slot, kernel and initrd), and fetches the
// delta of a chunk it lacks when to has one against from's root.
func MakePlan(from, to *Published) Plan {
	have := map[string]bool{}
	for _, s := range digests(from.Index) {
		have[s.SHA256] = true
	}
	delta := map[string]int64{}
	if d := to.Index.Deltas; d != nil {
		cuts := from.Index.ComponentCuts(update.PayloadRoot)
		for _, p := range d.Packs {
			for _, c := range p.Chunks {
				if cuts.Has(*c.Base) {
					delta[c.SHA256] = c.Stored
				}
			}
		}
	}
	p := Plan{Meta: to.Meta, Whole: to.Meta, Fetch: to.Meta}
	for _, pk := range to.Index.Packs {
		p.Whole += pk.Size
	}
	refs, counted := to.Index.Refs(), map[string]bool{}
	for _, c := range to.Index.Components {
		cp := ComponentPlan{Name: c.Name}
		for _, i := range c.Chunks {
			ch := to.Index.Packs[refs[i].Pack].Chunks[refs[i].Chunk]
			if counted[ch.SHA256] {
				continue
			}
			counted[ch.SHA256] = true
			cp.Chunks++
			cp.Stored += ch.Stored
			if !have[ch.SHA256] {
				cp.Fetch++
				cp.FetchBytes += cmp.Or(delta[ch.SHA256], ch.Stored)
			}
		}
		p.Fetch += cp.FetchBytes
		p.Components = append(p.Components, cp)
	}
	return p
}

// digests lists every chunk an index stores.
func digests(x *chunk.Index) []chunk.Chunk {
	var out []chunk.Chunk
	for _, p := range x.Packs {
		out = append(out, p.Chunks...)
	}
	return out
}
