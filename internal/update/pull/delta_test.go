package pull_test

import (
	"bytes"
	"errors"
	"os"
	"testing"

	"github.com/bulkhead-dev/bulkhead/internal/update/pull"
)

// relinked is the test root of the new version with file 17 changed as a
// relinked binary changes: the old bytes with one byte in every 3001
// changed, so no chunk of it survives, but a delta against the old file
// is small.
func relinked(t *testing.T, dir string) version {
	fs := files(oldVersion, -1)
	fs["etc/version"] = []byte(newVersion + "\n")
	app := "containers/svc17/rootfs/bin/app"
	b := bytes.Clone(fs[app])
	for i := 100; i < len(b); i += 3001 {
		b[i]++
	}
	fs[app] = b
	return buildVersionFiles(t, dir, newVersion, fs)
}

// TestPullWithDeltas: an update pushed with deltas against the running
// root installs the same slot as one without, fetching far fewer chunk
// bytes; a host whose root lacks the deltas' bases ignores them.
func TestPullWithDeltas(t *testing.T) {
	f := newFixture(t)
	v := relinked(t, f.dir)
	ref, _ := f.push(t, v, f.key)
	plain, _, err := f.pull(t, ref)
	if err != nil {
		t.Fatal(err)
	}

	f = newFixture(t)
	v = relinked(t, f.dir)
	ref, a := f.pushDeltas(t, v, f.key, &f.old)
	if a.Deltas() == 0 {
		t.Fatal("no deltas stored for a changed file")
	}
	u, _, err := f.pull(t, ref)
	if err != nil {
		t.Fatal(err)
	}
	ps, ds := plain.Stats(), u.Stats()
	t.Logf("without deltas %d chunk bytes (%d chunks); with %d (%d chunks, %d deltas)", ps.ChunkBytes, ps.ChunksFetched, ds.ChunkBytes, ds.ChunksFetched, ds.Deltas)
	if ds.Deltas == 0 || ds.ChunkBytes*4 > ps.ChunkBytes {
		t.Errorf("with deltas %d chunk bytes, without %d: want under a quarter", ds.ChunkBytes, ps.ChunkBytes)
	}
	want, _ := os.ReadFile(v.root)
	if !bytes.Equal(readRange(t, f.slotB, 0, int64(len(want))), want) {
		t.Error("slot b differs from the new root image")
	}

	// deltas against a root with other bytes: the host lacks their bases
	// and fetches whole chunks
	f = newFixture(t)
	fs := files("0.9.0", -1)
	for p, b := range fs {
		fs[p] = bytes.Repeat([]byte{byte(len(p))}, len(b)) // nothing in common
	}
	other := buildVersionFiles(t, t.TempDir(), "0.9.0", fs)
	v = relinked(t, f.dir)
	ref, a = f.pushDeltas(t, v, f.key, &other)
	if a.Deltas() == 0 {
		t.Fatal("no deltas against the other root")
	}
	u, _, err = f.pull(t, ref)
	if err != nil {
		t.Fatal(err)
	}
	if st := u.Stats(); st.Deltas != 0 || st.DeltaBytes != 0 {
		t.Errorf("a host lacking the bases fetched %d deltas (%d bytes)", st.Deltas, st.DeltaBytes)
	}
}

// TestPullBadDeltas: deltas that arrive with wrong bytes are refused and
// the chunks fetched whole; a registry that corrupts everything fails the
// update naming a chunk, with the host as it was.
func TestPullBadDeltas(t *testing.T) {
	f := newFixture(t)
	v := relinked(t, f.dir)
	ref, _ := f.pushDeltas(t, v, f.key, &f.old)
	f.reg.corrupt, f.reg.corruptTimes = true, 1
	u, _, err := f.pull(t, ref)
	if err != nil {
		t.Fatal(err)
	}
	if u.Stats().Refetched != 1 {
		t.Errorf("refetched %d, want 1", u.Stats().Refetched)
	}
	want, _ := os.ReadFile(v.root)
	if !bytes.Equal(readRange(t, f.slotB, 0, int64(len(want))), want) {
		t.Error("slot b differs from the new root image")
	}

	f = newFixture(t)
	v = relinked(t, f.dir)
	ref, _ = f.pushDeltas(t, v, f.key, &f.old)
	before := snapshot(t, f)
	f.reg.corrupt, f.reg.corruptTimes = true, -1
	_, _, err = f.pull(t, ref)
	if !errors.Is(err, pull.ErrChunk) {
		t.Fatalf("got %v, want an error naming the bad chunk", err)
	}
	if snapshot(t, f) != before {
		t.Error("refused deltas changed the ESP or slot b")
	}
}
