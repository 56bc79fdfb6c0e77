package stage0

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulkhead-dev/bulkhead/internal/host/blockdev"
	"github.com/bulkhead-dev/bulkhead/internal/verity"
)

// slotImage writes a root slot: blocks of data from seed, the verity
// superblock and tree after them, and spare room as a slot has.
func slotImage(t *testing.T, dir, name string, seed uint64, blocks int64) (string, verity.Params) {
	t.Helper()
	data := make([]byte, blocks*verity.BlockSize)
	r := rand.New(rand.NewPCG(seed, seed))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	p := filepath.Join(dir, name)
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	size := int64(len(data))
	params, err := verity.Format(t.Context(), bytes.NewReader(data), size, f, size, verity.SaltFrom([]byte("slot")))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(4 * size); err != nil {
		t.Fatal(err)
	}
	return p, params
}

// TestPickSlot: of the A/B slots, the one holding the command line's
// root hash boots; neither holding it finds none; both holding it is
// refused; an empty slot and one too small to hold the tree are passed
// over.
func TestPickSlot(t *testing.T) {
	dir := t.TempDir()
	a, pa := slotImage(t, dir, "a", 1, 300)
	b, pb := slotImage(t, dir, "b", 2, 300)
	_, pc := slotImage(t, dir, "c", 3, 300)
	empty := filepath.Join(dir, "empty")
	small := filepath.Join(dir, "small")
	if err := os.WriteFile(empty, make([]byte, 8<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(small, make([]byte, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	part := func(uuid, dev string) blockdev.DevPartition {
		return blockdev.DevPartition{Partition: blockdev.Partition{UUID: uuid}, Dev: dev}
	}
	slots := []blockdev.DevPartition{part("aa", a), part("bb", b), part("ee", empty), part("ss", small)}
	for _, tc := range []struct {
		p    verity.Params
		want string
	}{{pa, "aa"}, {pb, "bb"}, {pc, ""}} {
		got, found, err := pickSlot(slots, tc.p)
		if err != nil || found != (tc.want != "") || got.UUID != tc.want {
			t.Errorf("root hash %x: slot %q found %v, %v; want %q", tc.p.RootHash[:4], got.UUID, found, err, tc.want)
		}
	}
	// An update wrote the running version into the other slot: both hold
	// the hash, and stage 0 will not guess.
	twin := filepath.Join(dir, "twin")
	img, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(twin, img, 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err = pickSlot([]blockdev.DevPartition{part("aa", a), part("tt", twin)}, pa)
	if err == nil || !strings.Contains(err.Error(), "aa and tt both hold root hash") {
		t.Errorf("two slots holding the hash: %v", err)
	}
}
