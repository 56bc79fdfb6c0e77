package chunk

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
)

func random(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func split(t *testing.T, b []byte, p Params) []string {
	t.Helper()
	var sums []string
	var total int
	err := Split(bytes.NewReader(b), p, func(off int64, c []byte) error {
		if int(off) != total {
			t.Fatalf("chunk at %d, want %d", off, total)
		}
		if len(c) > p.Max || len(c) < p.Min && total+len(c) != len(b) {
			t.Fatalf("chunk of %d bytes outside %d..%d", len(c), p.Min, p.Max)
		}
		total += len(c)
		sums = append(sums, Sum(c))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if total != len(b) {
		t.Fatalf("chunks cover %d of %d bytes", total, len(b))
	}
	return sums
}

// TestSplitSurvivesAnInsertion: bytes inserted near the start change the
// chunks around them only; the average size is near the target.
func TestSplitSurvivesAnInsertion(t *testing.T) {
	b := random(8<<20, 1)
	before := split(t, b, Default)
	if avg := len(b) / len(before); avg < Default.Avg/2 || avg > 2*Default.Avg {
		t.Errorf("average chunk %d bytes, target %d", avg, Default.Avg)
	}
	after := split(t, append(append(append([]byte{}, b[:100000]...), "inserted"...), b[100000:]...), Default)
	old := map[string]bool{}
	for _, s := range before {
		old[s] = true
	}
	changed := 0
	for _, s := range after {
		if !old[s] {
			changed++
		}
	}
	if changed > 3 {
		t.Errorf("%d of %d chunks changed after an 8-byte insertion", changed, len(after))
	}
	if again := split(t, b, Default); strings.Join(again, "") != strings.Join(before, "") {
		t.Error("two splits of the same bytes differ")
	}
}

func TestParamsCheck(t *testing.T) {
	for _, p := range []Params{{16, 64, 256}, {1024, 1000, 4096}, {1024, 3000, 8192}, {1 << 10, 4 << 10, 8 << 20}} {
		if p.Check() == nil {
			t.Errorf("%v accepted", p)
		}
	}
}

// TestIndexCheck: an index whose chunks do not fill their pack, or whose
// component points past the chunks, is refused.
func TestIndexCheck(t *testing.T) {
	d := "sha256:" + strings.Repeat("a", 64)
	good := Index{Format: IndexFormat, Params: Default, Encoding: EncodingZstd,
		Packs:      []Pack{{Digest: d, Size: 10, Chunks: []Chunk{{SHA256: strings.Repeat("b", 64), Size: 100, Offset: 0, Stored: 10}}}},
		Components: []Component{{Name: "root", Size: 100, Chunks: []int{0}}}}
	b, err := good.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseIndex(b); err != nil {
		t.Fatal(err)
	}
	bad := good
	bad.Packs = []Pack{{Digest: d, Size: 11, Chunks: good.Packs[0].Chunks}}
	if bad.Check() == nil {
		t.Error("a pack with a gap accepted")
	}
	bad = good
	bad.Components = []Component{{Name: "root", Size: 100, Chunks: []int{1}}}
	if bad.Check() == nil {
		t.Error("a component pointing past the chunks accepted")
	}
	if _, err := ParseIndex(append(b[:len(b)-1], []byte(`,"x":1}`)...)); err == nil {
		t.Error("an unknown field accepted")
	}
}

// TestIndexDeltasCheck: a delta must have a bounded base, make a chunk
// the index stores, and only deltas may have a base.
func TestIndexDeltasCheck(t *testing.T) {
	d, sum := "sha256:"+strings.Repeat("a", 64), strings.Repeat("b", 64)
	good := Index{Format: IndexFormat, Params: Default, Encoding: EncodingZstd,
		Packs:      []Pack{{Digest: d, Size: 10, Chunks: []Chunk{{SHA256: sum, Size: 100, Offset: 0, Stored: 10}}}},
		Components: []Component{{Name: "root", Size: 100, Chunks: []int{0}}},
		Deltas: &Deltas{Packs: []Pack{{Digest: "sha256:" + strings.Repeat("d", 64), Size: 3,
			Chunks: []Chunk{{SHA256: sum, Size: 100, Offset: 0, Stored: 3, Base: &Base{Offset: 4096, Size: 1 << 20, List: strings.Repeat("c", 64)}}}}}}}
	b, err := good.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseIndex(b); err != nil {
		t.Fatal(err)
	}
	for name, edit := range map[string]func(x *Index){
		"a delta without a base":        func(x *Index) { x.Deltas.Packs[0].Chunks[0].Base = nil },
		"a base over MaxBase":           func(x *Index) { x.Deltas.Packs[0].Chunks[0].Base.Size = MaxBase + 1 },
		"a negative base offset":        func(x *Index) { x.Deltas.Packs[0].Chunks[0].Base.Offset = -1 },
		"a delta of a chunk not stored": func(x *Index) { x.Deltas.Packs[0].Chunks[0].SHA256 = strings.Repeat("e", 64) },
		"a stored chunk with a base":    func(x *Index) { x.Packs[0].Chunks[0].Base = &Base{Size: 1} },
		"a bad base list digest":        func(x *Index) { x.Deltas.Packs[0].Chunks[0].Base.List = "c" },
		"a delta pack with a gap":       func(x *Index) { x.Deltas.Packs[0].Size = 4 },
	} {
		var x Index
		if err := json.Unmarshal(b, &x); err != nil {
			t.Fatal(err)
		}
		edit(&x)
		if x.Check() == nil {
			t.Errorf("%s accepted", name)
		}
	}
}

// TestCutsBase: a base covers whole chunks around the range asked for,
// and content has it only when the same chunks sit at the same place.
func TestCutsBase(t *testing.T) {
	var a, b Cuts
	for i, sum := range []string{"a", "b", "c", "d"} {
		a.Add(int64(i)*100, 100, strings.Repeat(sum, 64))
		b.Add(int64(i)*100, 100, strings.Repeat(map[string]string{"c": "e"}[sum]+sum, 64)[:64])
	}
	base := a.Base(150, 250)
	if base.Offset != 100 || base.Size != 200 {
		t.Fatalf("base %+v, want chunks b and c (100+200)", base)
	}
	if !a.Has(base) {
		t.Error("content lacks its own base")
	}
	if b.Has(base) {
		t.Error("other content has the base")
	}
	if a.Has(Base{Offset: 150, Size: 100, List: base.List}) {
		t.Error("a base off the chunk boundaries found")
	}
}
