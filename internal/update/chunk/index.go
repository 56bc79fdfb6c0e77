package chunk

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"sort"
)

// IndexMediaType is the media type of an encoded Index.
const IndexMediaType = "application/vnd.bulkhead.update.index.v1+json"

// IndexFormat is the index format this package writes and reads.
const IndexFormat = 1

// Caps on what an index may claim.
const (
	MaxIndex      = 64 << 20
	maxChunks     = 1 << 22
	maxPacks      = 4096
	maxComponents = 8
)

// Encodings of a stored chunk.
const EncodingZstd = "zstd"

// Index says how an update's payloads are cut into chunks and where each
// chunk is stored. It is not signed: a host checks every chunk against
// its digest here, and the assembled payloads against the digests of the
// signed manifest, so a wrong index can waste a download but never get a
// payload installed.
type Index struct {
	Format   int    `json:"format"`
	Params   Params `json:"params"`
	Encoding string `json:"encoding"`
	// Components are the chunked payloads: the root's file system (its
	// verity tree is derived data, never stored), the kernel, the initrd.
	Components []Component `json:"components"`
	// Packs are the blobs the chunks are stored in.
	Packs []Pack `json:"packs"`
	// Deltas, when present, store some chunks a second time, smaller,
	// for hosts running one earlier version (see Deltas).
	Deltas *Deltas `json:"deltas,omitempty"`
}

// Deltas are chunks each compressed against bytes a host running an
// earlier version already has: a range of that version's root file
// system, given to zstd as a raw dictionary. A changed binary relinks
// throughout, so few of its chunks survive content-defined chunking,
// but most of each new chunk's bytes are in the old binary near the
// same place. A host whose running root holds a delta's base fetches
// the delta instead of the chunk; any other host ignores it.
type Deltas struct {
	// Packs hold the deltas back to back; each Chunk has a Base.
	Packs []Pack `json:"packs"`
}

// MaxBase bounds a delta's dictionary (what a host reads and holds to
// decode it).
const MaxBase = 4 << 20

// Component is one payload as a list of chunks, in order.
type Component struct {
	Name string `json:"name"`
	// Size is the component's length, the sum of its chunks' sizes.
	Size   int64 `json:"size"`
	Chunks []int `json:"chunks"` // indexes into Index.Chunks via Ref
}

// Pack is one blob holding chunks back to back, each compressed alone.
type Pack struct {
	Digest string  `json:"digest"` // "sha256:..." of the blob
	Size   int64   `json:"size"`
	Chunks []Chunk `json:"chunks"`
}

// Chunk is one stored chunk.
type Chunk struct {
	// SHA256 and Size describe the chunk's content.
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
	// Offset and Stored locate its compressed bytes in the pack.
	Offset int64 `json:"offset"`
	Stored int64 `json:"stored"`
	// Base, for a delta only, is the dictionary it was compressed with.
	Base *Base `json:"base,omitempty"`
}

// Base is a range of the earlier root's file system, whole chunks of
// it, named by their list digest (ListDigest): a host has the base when
// its running root, cut as the index says, has chunks from Offset to
// Offset+Size with that list digest (whatever its verity salt, and
// whatever else differs elsewhere in it).
type Base struct {
	Offset int64  `json:"offset"`
	Size   int64  `json:"size"`
	List   string `json:"list"`
}

// Ref names a stored chunk: a pack and a chunk within it.
type Ref struct{ Pack, Chunk int }

// Refs lists every stored chunk in the order the packs hold them; a
// component's Chunks index into it.
func (x *Index) Refs() []Ref {
	var out []Ref
	for p, pk := range x.Packs {
		for c := range pk.Chunks {
			out = append(out, Ref{p, c})
		}
	}
	return out
}

// Component returns the component called name.
func (x *Index) Component(name string) (Component, bool) {
	for _, c := range x.Components {
		if c.Name == name {
			return c, true
		}
	}
	return Component{}, false
}

// Marshal encodes a checked index.
func (x *Index) Marshal() ([]byte, error) {
	if err := x.Check(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(x)
	if err != nil {
		return nil, fmt.Errorf("encoding chunk index: %w", err)
	}
	return b, nil
}

// ParseIndex decodes and checks an index; unknown fields are errors.
func ParseIndex(b []byte) (*Index, error) {
	if len(b) > MaxIndex {
		return nil, fmt.Errorf("parsing chunk index: %d bytes, at most %d", len(b), MaxIndex)
	}
	var x Index
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&x); err != nil {
		return nil, fmt.Errorf("parsing chunk index: %w", err)
	}
	if err := x.Check(); err != nil {
		return nil, err
	}
	return &x, nil
}

// Check reports an index a host should not act on.
func (x *Index) Check() error {
	if err := x.check(); err != nil {
		return fmt.Errorf("checking chunk index: %w", err)
	}
	return nil
}

func (x *Index) check() error {
	switch {
	case x.Format != IndexFormat:
		return fmt.Errorf("format %d, this host reads %d", x.Format, IndexFormat)
	case x.Encoding != EncodingZstd:
		return fmt.Errorf("encoding %q, want %q", x.Encoding, EncodingZstd)
	case len(x.Packs) > maxPacks || len(x.Components) > maxComponents:
		return errors.New("too many packs or components")
	}
	if err := x.Params.Check(); err != nil {
		return err
	}
	n, err := checkPacks(x.Packs, false)
	if err != nil {
		return err
	}
	if err := x.checkDeltas(); err != nil {
		return err
	}
	refs := x.Refs()
	for _, c := range x.Components {
		var size int64
		for _, i := range c.Chunks {
			if i < 0 || i >= n {
				return fmt.Errorf("component %s: chunk %d of %d", c.Name, i, n)
			}
			r := refs[i]
			size += x.Packs[r.Pack].Chunks[r.Chunk].Size
		}
		if size != c.Size || len(c.Chunks) > maxChunks {
			return fmt.Errorf("component %s: chunks add up to %d bytes, want %d", c.Name, size, c.Size)
		}
	}
	return nil
}

// checkDeltas checks the deltas' places and bases; each must make a
// chunk the index stores.
func (x *Index) checkDeltas() error {
	d := x.Deltas
	if d == nil {
		return nil
	}
	if len(d.Packs) > maxPacks {
		return errors.New("deltas: too many packs")
	}
	if _, err := checkPacks(d.Packs, true); err != nil {
		return fmt.Errorf("deltas: %w", err)
	}
	stored := map[string]int64{}
	for _, p := range x.Packs {
		for _, c := range p.Chunks {
			stored[c.SHA256] = c.Size
		}
	}
	for _, p := range d.Packs {
		for _, c := range p.Chunks {
			if size, ok := stored[c.SHA256]; !ok || size != c.Size {
				return fmt.Errorf("deltas: chunk %s is not one the index stores", c.SHA256)
			}
		}
	}
	return nil
}

// checkBase checks a chunk's Base: present exactly for a delta.
func checkBase(c Chunk, delta bool) error {
	switch {
	case !delta && c.Base != nil:
		return fmt.Errorf("chunk %s: a base outside the deltas", c.SHA256)
	case delta && (c.Base == nil || c.Base.Offset < 0 || c.Base.Size <= 0 || c.Base.Size > MaxBase || !isHex(c.Base.List)):
		return fmt.Errorf("delta %s: no base, or one of more than %d bytes", c.SHA256, MaxBase)
	}
	return nil
}

// checkPacks checks every stored chunk's place and returns their number.
func checkPacks(packs []Pack, deltas bool) (int, error) {
	n := 0
	for _, p := range packs {
		if !isDigest(p.Digest) || p.Size <= 0 {
			return 0, fmt.Errorf("pack %q: bad digest or size", p.Digest)
		}
		var end int64
		for _, c := range p.Chunks {
			switch {
			case !isHex(c.SHA256) || c.Size <= 0 || c.Size > MaxChunk:
				return 0, fmt.Errorf("pack %s: chunk %q: bad digest or size", p.Digest, c.SHA256)
			case c.Offset != end || c.Stored <= 0 || c.Stored > 2*MaxChunk:
				return 0, fmt.Errorf("pack %s: chunk %s: not packed back to back", p.Digest, c.SHA256)
			}
			if err := checkBase(c, deltas); err != nil {
				return 0, fmt.Errorf("pack %s: %w", p.Digest, err)
			}
			end += c.Stored
		}
		if end != p.Size {
			return 0, fmt.Errorf("pack %s: chunks fill %d of %d bytes", p.Digest, end, p.Size)
		}
		if n += len(p.Chunks); n > maxChunks {
			return 0, errors.New("too many chunks")
		}
	}
	return n, nil
}

// ListDigest names content by how it is cut: the SHA-256 of its chunks'
// hex digests, in order. Two roots with the same bytes have the same
// list digest even when their verity salts (and root hashes) differ.
type ListDigest struct{ h hash.Hash }

// NewListDigest starts an empty list.
func NewListDigest() *ListDigest { return &ListDigest{h: sha256.New()} }

// Add appends a chunk's hex digest.
func (l *ListDigest) Add(sum string) { l.h.Write([]byte(sum)) }

// Sum is the list's digest, in hex.
func (l *ListDigest) Sum() string { return hex.EncodeToString(l.h.Sum(nil)) }

// Cuts is content as its chunks: each one's offset, size and digest, in
// order (what a host learns cutting its running root).
type Cuts struct {
	offs, sizes []int64
	sums        []string
	at          map[int64]int
}

// Add appends the next chunk.
func (c *Cuts) Add(off, size int64, sum string) {
	if c.at == nil {
		c.at = map[int64]int{}
	}
	c.at[off] = len(c.offs)
	c.offs, c.sizes, c.sums = append(c.offs, off), append(c.sizes, size), append(c.sums, sum)
}

// Has says whether the content holds b: chunks from b.Offset to
// b.Offset+b.Size whose list digest is b.List.
func (c *Cuts) Has(b Base) bool {
	i, ok := c.at[b.Offset]
	if !ok {
		return false
	}
	l, end := NewListDigest(), b.Offset
	for ; i < len(c.offs) && end < b.Offset+b.Size; i++ {
		l.Add(c.sums[i])
		end = c.offs[i] + c.sizes[i]
	}
	return end == b.Offset+b.Size && l.Sum() == b.List
}

// Base is the base covering at least [lo, hi): the chunks overlapping
// it, and their list digest.
func (c *Cuts) Base(lo, hi int64) Base {
	i := max(sort.Search(len(c.offs), func(i int) bool { return c.offs[i]+c.sizes[i] > lo }), 0)
	b, l := Base{Offset: lo}, NewListDigest()
	if i < len(c.offs) {
		b.Offset = c.offs[i]
	}
	end := b.Offset
	for ; i < len(c.offs) && end < hi; i++ {
		l.Add(c.sums[i])
		end = c.offs[i] + c.sizes[i]
	}
	b.Size, b.List = end-b.Offset, l.Sum()
	return b
}

// ComponentCuts is a component of x as Cuts.
func (x *Index) ComponentCuts(name string) *Cuts {
	cuts := &Cuts{}
	c, ok := x.Component(name)
	if !ok {
		return cuts
	}
	refs := x.Refs()
	var off int64
	for _, i := range c.Chunks {
		if i >= 0 && i < len(refs) {
			ch := x.Packs[refs[i].Pack].Chunks[refs[i].Chunk]
			cuts.Add(off, ch.Size, ch.SHA256)
			off += ch.Size
		}
	}
	return cuts
}

// Sum is the hex SHA-256 that names a chunk.
func Sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func isDigest(s string) bool {
	h, ok := bytes.CutPrefix([]byte(s), []byte("sha256:"))
	return ok && isHex(string(h))
}

func isHex(s string) bool {
	b, err := hex.DecodeString(s)
	return err == nil && len(b) == sha256.Size && hex.EncodeToString(b) == s
}
