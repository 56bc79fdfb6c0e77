package pull_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulkhead-dev/bulkhead/internal/update/pull"
)

// TestPullInstallsTheNewVersion: a host on 1.0.0 pulls 1.1.0, where one
// file of forty changed, through a registry on 127.0.0.1: slot b then
// holds the new root image byte for byte (its verity tree recomputed, not
// fetched), the ESP the new kernel and initrd and a counted entry, and
// the registry served a small part of the artifact.
func TestPullInstallsTheNewVersion(t *testing.T) {
	f := newFixture(t)
	ref, art := f.push(t, f.new, f.key)
	u, res, err := f.pull(t, ref)
	if err != nil {
		t.Fatal(err)
	}
	if res.Entry != "loader/entries/bulkhead-"+newVersion+"+3.conf" {
		t.Errorf("entry %s", res.Entry)
	}
	want, _ := os.ReadFile(f.new.root)
	got := readRange(t, f.slotB, 0, int64(len(want)))
	if !bytes.Equal(got, want) {
		t.Error("slot b differs from the new root image")
	}
	for name, b := range map[string][]byte{"linux": f.new.kernel, "initrd": f.new.initrd} {
		if g, _ := os.ReadFile(filepath.Join(f.esp, "bulkhead", newVersion, name)); !bytes.Equal(g, b) {
			t.Errorf("ESP %s differs", name)
		}
	}
	whole, err := art.Size()
	if err != nil {
		t.Fatal(err)
	}
	served, _ := f.reg.total()
	st := u.Stats()
	t.Logf("served %d of %d bytes (%.1f%%); %d chunks fetched (%d bytes), %d on the host",
		served, whole, 100*float64(served)/float64(whole), st.ChunksFetched, st.ChunkBytes, st.ChunksLocal)
	if served > whole/10 {
		t.Errorf("served %d bytes of a %d-byte artifact for a one-file change", served, whole)
	}
	if _, err := os.Stat(filepath.Join(f.dir, "var", "chunks")); !os.IsNotExist(err) {
		t.Errorf("chunk cache left after the commit: %v", err)
	}
}

// TestPullNoChangeFetchesOnlyTheIndex: pulling the running version's
// content again (as a newer version) fetches no chunk.
func TestPullNoChangeFetchesOnlyTheIndex(t *testing.T) {
	f := newFixture(t)
	same := f.old
	same.name = newVersion
	ref, _ := f.push(t, same, f.key)
	u, _, err := f.pull(t, ref)
	if err != nil {
		t.Fatal(err)
	}
	if st := u.Stats(); st.ChunksFetched != 0 {
		t.Errorf("fetched %d chunks for an unchanged root", st.ChunksFetched)
	}
}

// TestPullResumesAfterCuts: the registry drops the connection in the
// middle of blob responses, then serves again: the pull finishes and no
// verified chunk is fetched twice.
func TestPullResumesAfterCuts(t *testing.T) {
	f := newFixture(t)
	ref, _ := f.push(t, f.new, f.key)
	f.reg.cutAfter, f.reg.cuts = 1000, 2
	u, _, err := f.pull(t, ref)
	if err != nil {
		t.Fatal(err)
	}
	if st := u.Stats(); st.Refetched != 0 {
		t.Errorf("%d chunks refetched", st.Refetched)
	}
	want, _ := os.ReadFile(f.new.root)
	if !bytes.Equal(readRange(t, f.slotB, 0, int64(len(want))), want) {
		t.Error("slot b differs from the new root image")
	}
}

// TestPullResumesAfterPowerCut: a pull that stops half way (the registry
// goes away) leaves the host as it was; the next pull fetches only what
// the first had not verified.
func TestPullResumesAfterPowerCut(t *testing.T) {
	f := newFixture(t)
	ref, _ := f.push(t, f.new, f.key)
	full, _, err := f.pull(t, ref) // measure a whole pull on a copy
	if err != nil {
		t.Fatal(err)
	}
	need := full.Stats().ChunkBytes
	_, served := f.reg.total()
	f = newFixture(t)
	ref, _ = f.push(t, f.new, f.key)
	before := snapshot(t, f)
	f.reg.budget, f.reg.budgetOn = served/2, true
	first, _, err := f.pull(t, ref, pull.WithTries(2))
	if err == nil {
		t.Fatalf("pull through a registry that cuts after %d bytes succeeded: %+v", served/2, first.Stats())
	}
	if snapshot(t, f) != before {
		t.Fatal("a failed pull changed the ESP or slot b")
	}
	f.reg.budgetOn = false
	second, _, err := f.pull(t, ref)
	if err != nil {
		t.Fatal(err)
	}
	got := first.Stats().ChunkBytes + second.Stats().ChunkBytes
	t.Logf("first pull verified %d chunk bytes, the second fetched %d; a whole pull %d", first.Stats().ChunkBytes, second.Stats().ChunkBytes, need)
	if got != need {
		t.Errorf("chunk bytes fetched in two pulls %d, a whole pull needs %d", got, need)
	}
}

// TestPullRefetchesABadChunk: a chunk served with wrong bytes is refused
// and fetched again; a registry that keeps doing it fails the update,
// naming the chunk, with the host as it was.
func TestPullRefetchesABadChunk(t *testing.T) {
	f := newFixture(t)
	ref, _ := f.push(t, f.new, f.key)
	f.reg.corrupt, f.reg.corruptTimes = true, 1
	u, _, err := f.pull(t, ref)
	if err != nil {
		t.Fatal(err)
	}
	if u.Stats().Refetched != 1 {
		t.Errorf("refetched %d chunks, want 1", u.Stats().Refetched)
	}

	f = newFixture(t)
	ref, _ = f.push(t, f.new, f.key)
	before := snapshot(t, f)
	f.reg.corrupt, f.reg.corruptTimes = true, -1
	_, _, err = f.pull(t, ref)
	if !errors.Is(err, pull.ErrChunk) || !strings.Contains(err.Error(), "chunk ") {
		t.Fatalf("got %v, want an error naming the bad chunk", err)
	}
	t.Log(err)
	if snapshot(t, f) != before {
		t.Error("a refused chunk changed the ESP or slot b")
	}
}

// TestPullRefusesUnsigned: an artifact with no signature, or one by a
// key the host does not trust, is refused before the index or any chunk
// is fetched.
func TestPullRefusesUnsigned(t *testing.T) {
	f := newFixture(t)
	ref, _ := f.push(t, f.new, newKey(t))
	if _, _, err := f.pull(t, ref); !errors.Is(err, pull.ErrUnsigned) {
		t.Errorf("wrong key: got %v", err)
	}
	if _, blobs := f.reg.total(); blobs > 4096 {
		t.Errorf("served %d blob bytes before refusing", blobs)
	}
	f.reg.reset()
	unsigned := strings.Replace(ref, newVersion, "unsigned", 1)
	f.pushUnsigned(t, ref, unsigned)
	if _, _, err := f.pull(t, unsigned); !errors.Is(err, pull.ErrUnsigned) {
		t.Errorf("unsigned: got %v", err)
	}
	if _, blobs := f.reg.total(); blobs != 0 {
		t.Errorf("served %d blob bytes before refusing", blobs)
	}
}

// snapshot sums the ESP's files and slot b.
func snapshot(t testing.TB, f *fixture) string {
	t.Helper()
	var b strings.Builder
	filepath.Walk(f.esp, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			c, _ := os.ReadFile(p)
			b.WriteString(p + string(c))
		}
		return nil
	})
	c, _ := os.ReadFile(f.slotB)
	b.Write(c)
	return b.String()
}

// TestPullDropsATornCachedChunk: a chunk left torn in the cache by a
// power cut (the cache is synced per span, not per chunk) is dropped and
// fetched again, never written as good.
func TestPullDropsATornCachedChunk(t *testing.T) {
	f := newFixture(t)
	ref, _ := f.push(t, f.new, f.key)
	f.reg.budget, f.reg.budgetOn = 200<<10, true
	if _, _, err := f.pull(t, ref, pull.WithTries(1)); err == nil {
		t.Fatal("a pull cut early succeeded")
	}
	f.reg.budgetOn = false
	cache := filepath.Join(f.dir, "var", "chunks")
	des, _ := os.ReadDir(cache)
	if len(des) == 0 {
		t.Fatal("nothing in the cache after a cut pull")
	}
	if err := os.Truncate(filepath.Join(cache, des[0].Name()), 10); err != nil {
		t.Fatal(err)
	}
	u, _, err := f.pull(t, ref)
	if err != nil {
		t.Fatal(err)
	}
	if u.Stats().ChunksFetched == 0 {
		t.Error("the torn chunk was not fetched again")
	}
	want, _ := os.ReadFile(f.new.root)
	if !bytes.Equal(readRange(t, f.slotB, 0, int64(len(want))), want) {
		t.Error("slot b differs from the new root image")
	}
}

// TestPullFindsItsSignatureAmongOthers: the same artifact pushed again
// signed by another key keeps both signatures at its tag (as cosign
// appends them), and the host finds the one it trusts.
func TestPullFindsItsSignatureAmongOthers(t *testing.T) {
	f := newFixture(t)
	ref, _ := f.push(t, f.new, f.key)
	f.push(t, f.new, newKey(t))
	if _, _, err := f.pull(t, ref); err != nil {
		t.Fatal(err)
	}
}
