package rootfs

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/builder/config"
)

// checkIndex fails when the tree's directory index disagrees with its
// entries, or an entry's parent is missing or not a directory.
func checkIndex(t testing.TB, tr *Tree) {
	t.Helper()
	n := 0
	for dir, kids := range tr.kids {
		for k := range kids {
			n++
			if tr.entries[k] == nil || parentOf(k) != dir {
				t.Fatalf("index lists %q under %q", k, dir)
			}
		}
	}
	for p := range tr.entries {
		if p == "" {
			continue
		}
		if _, ok := tr.kids[parentOf(p)][p]; !ok {
			t.Fatalf("entry %q missing from the index", p)
		}
		if d := tr.entries[parentOf(p)]; d == nil || d.Kind != KindDir {
			t.Fatalf("entry %q has no parent directory", p)
		}
	}
	if n != len(tr.entries)-1 {
		t.Fatalf("index holds %d entries, tree %d", n, len(tr.entries)-1)
	}
}

// whiteoutLayers are the case: n directories (each with a file) in
// one layer, a whiteout for each in the next.
func whiteoutLayers(t testing.TB, n int) (lower, upper []tf) {
	for i := range n {
		d := fmt.Sprintf("d%06d", i)
		lower = append(lower, dir(d+"/", 0o755), reg(d+"/f", "x", 0o644))
		upper = append(upper, reg(".wh."+d, "", 0))
	}
	return lower, upper
}

func TestWhiteoutsTakeLinearTime(t *testing.T) {
	const n = 40000 // quadratic before: 10 s; now well under a second
	lower, upper := whiteoutLayers(t, n)
	lo, up := layer(t, lower...), layer(t, append(upper, reg("kept", "k", 0o644))...)
	tr := New()
	if err := ApplyLayer(tr, "", lo); err != nil {
		t.Fatal(err)
	}
	if tr.Len() != 2*n+1 {
		t.Fatalf("lower layer gave %d entries", tr.Len())
	}
	start := time.Now()
	if err := ApplyLayer(tr, "", up); err != nil {
		t.Fatal(err)
	}
	d := time.Since(start)
	if tr.Len() != 2 || tr.Get("kept") == nil {
		t.Fatalf("after the whiteouts: %v", paths(tr))
	}
	checkIndex(t, tr)
	if d > 3*time.Second {
		t.Errorf("%d whiteouts took %v", n, d)
	}
	t.Logf("%d whiteouts: %v", n, d)
}

// Whiteouts and opaque directories in one layer never remove what the same
// layer adds, and leave no entry without its parent.
func TestWhiteoutKeepsWhatTheLayerAdds(t *testing.T) {
	tr := New()
	if err := ApplyLayer(tr, "", layer(t, dir("a/", 0o755), dir("a/b/", 0o755), reg("a/b/old", "o", 0o644), reg("a/x", "x", 0o644))); err != nil {
		t.Fatal(err)
	}
	// The upper layer adds a/b/new without an entry for a/b, then makes a
	// opaque: a/b stays as new's parent, old and x go.
	if err := ApplyLayer(tr, "", layer(t, reg("a/b/new", "n", 0o644), reg("a/.wh..wh..opq", "", 0))); err != nil {
		t.Fatal(err)
	}
	got := paths(tr)
	want := []string{"", "a", "a/b", "a/b/new"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("paths %v, want %v", got, want)
	}
	checkIndex(t, tr)
}

func TestEntriesLimit(t *testing.T) {
	var files []tf
	for i := range 200 {
		files = append(files, reg(fmt.Sprintf("f%03d", i), "", 0o644))
	}
	l := layer(t, files...)
	tr := New()
	err := ApplyLayer(tr, "", l, WithLimits(config.Sizes{Entries: 100}))
	if err == nil || !strings.Contains(err.Error(), `entry "f099": the root would hold more than 100 entries (policy.limits.entries)`) {
		t.Fatalf("error %v", err)
	}
	if err := ApplyLayer(New(), "", l, WithLimits(config.Sizes{Entries: 201})); err != nil {
		t.Fatalf("within the limit: %v", err)
	}
}
