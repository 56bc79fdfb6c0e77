package publish

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/bulkhead-dev/bulkhead/internal/update/chunk"
)

// TestChunkSizeFigures compares chunk sizes on real bundles
// (scripts/bench/registry builds them into $BULKHEAD_REGBENCH): for each, the
// bytes a host on 1.0.0 fetches for a changed service, runc or init, the
// root's share of it, and the index. It is how chunk.Default was chosen.
func TestChunkSizeFigures(t *testing.T) {
	dir := os.Getenv("BULKHEAD_REGBENCH")
	if dir == "" {
		t.Skip("BULKHEAD_REGBENCH not set (make bench sets it)")
	}
	sizes := []chunk.Params{
		{Min: 2 << 10, Avg: 8 << 10, Max: 32 << 10},
		{Min: 4 << 10, Avg: 16 << 10, Max: 64 << 10},
		{Min: 16 << 10, Avg: 64 << 10, Max: 256 << 10},
		{Min: 64 << 10, Avg: 256 << 10, Max: 1 << 20},
	}
	t.Logf("chunks: %-8s %-8s %-14s %8s %10s %10s %10s", "spec", "change", "min/avg/max", "chunks", "index", "root", "fetched")
	for _, spec := range []string{"minimal", "large"} {
		for _, p := range sizes {
			base := load(t, filepath.Join(dir, spec+"-1.0.0.bundle"), p)
			for _, change := range []string{"service", "runc", "init"} {
				pl := MakePlan(base, load(t, filepath.Join(dir, spec+"-"+change+".bundle"), p))
				n := 0
				for _, c := range pl.Components {
					n += c.Chunks
				}
				t.Logf("chunks: %-8s %-8s %4d/%4d/%4d %8d %10d %10d %10d", spec, change, p.Min>>10, p.Avg>>10, p.Max>>10, n, pl.Meta, pl.Components[0].FetchBytes, pl.Fetch)
			}
		}
	}
}

func load(t *testing.T, bundle string, p chunk.Params) *Published {
	t.Helper()
	a, err := Chunk(t.Context(), bundle, t.TempDir(), p)
	if err != nil {
		t.Fatal(err)
	}
	ib, err := a.Index.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return &Published{Index: a.Index, Meta: int64(len(ib) + len(a.ManifestJSON) + len(a.Envelope))}
}
