package pull

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/bulkhead-dev/bulkhead/internal/bootentry"
	"github.com/bulkhead-dev/bulkhead/internal/host/apply"
	"github.com/bulkhead-dev/bulkhead/internal/update/chunk"
	"github.com/bulkhead-dev/bulkhead/internal/verity"
)

// Seed is content the host already has, searched for chunks.
type Seed struct {
	Name string
	R    io.ReaderAt
	Size int64
	// Volatile content may be overwritten by this update (the slot being
	// written): chunks found only there are copied to the cache before
	// anything is written.
	Volatile bool
}

// location is where the host has a chunk: in a seed, or in the cache
// (seed -1).
type location struct {
	seed int
	off  int64
}

const inCache = -1

// scanCache notes every needed chunk the cache holds whole; a torn or
// stray file is removed.
func (u *Update) scanCache(need map[string]int64) error {
	if err := os.MkdirAll(u.o.cache, 0o700); err != nil {
		return fmt.Errorf("creating chunk cache: %w", err)
	}
	des, err := os.ReadDir(u.o.cache)
	if err != nil {
		return fmt.Errorf("reading chunk cache: %w", err)
	}
	for _, de := range des {
		size, ok := need[de.Name()]
		if !ok {
			continue
		}
		u.where[de.Name()] = location{seed: inCache}
		if _, err := u.local(de.Name(), size); err != nil {
			delete(u.where, de.Name())
			os.Remove(filepath.Join(u.o.cache, de.Name()))
		}
	}
	return nil
}

// scanSeeds cuts every seed as the index was cut and notes the needed
// chunks found, preferring a stable seed over a volatile one.
func (u *Update) scanSeeds(ctx context.Context, need map[string]int64) error {
	u.cuts = make([]*chunk.Cuts, len(u.o.seeds))
	for i, s := range u.o.seeds {
		cuts := &chunk.Cuts{}
		if !s.Volatile && u.index.Deltas != nil {
			u.cuts[i] = cuts
		}
		err := chunk.Split(io.NewSectionReader(s.R, 0, s.Size), u.index.Params, func(off int64, b []byte) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			sum := chunk.Sum(b)
			if u.cuts[i] != nil {
				cuts.Add(off, int64(len(b)), sum)
			}
			if _, ok := need[sum]; !ok {
				return nil
			}
			if l, ok := u.where[sum]; !ok || !s.Volatile && l.seed != inCache && u.o.seeds[l.seed].Volatile {
				u.where[sum] = location{seed: i, off: off}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("looking for chunks in %s: %w", s.Name, err)
		}
	}
	return nil
}

// keepVolatile copies the chunks found only in volatile seeds into the
// cache, so writing the slot cannot destroy them before they are used.
func (u *Update) keepVolatile(ctx context.Context, need map[string]int64) error {
	for sum, l := range u.where {
		if l.seed == inCache || !u.o.seeds[l.seed].Volatile {
			continue
		}
		b, err := u.local(sum, need[sum])
		if err != nil {
			delete(u.where, sum)
			continue
		}
		if err := u.keep(sum, b); err != nil {
			return err
		}
		u.where[sum] = location{seed: inCache}
	}
	return ctx.Err()
}

// targetSeed is the slot about to be written, as far as the ESP says its
// file system goes (an entry booting it names its verity parameters).
func targetSeed(t apply.Target) (Seed, bool) {
	dir := filepath.Join(t.ESP, bootentry.EntriesDir)
	des, err := os.ReadDir(dir)
	if err != nil {
		return Seed{}, false
	}
	for _, de := range des {
		b, err := os.ReadFile(filepath.Join(dir, de.Name()))
		if err != nil || len(b) > 64<<10 || !strings.EqualFold(bootentry.RootPartUUID(string(b)), t.SlotGUID) {
			continue
		}
		p, ok, err := verity.FromCmdline(optionsLine(string(b)))
		if err == nil && ok && int64(p.DataBlocks)*verity.BlockSize <= t.SlotSize {
			return Seed{Name: "slot " + t.SlotGUID, R: t.Slot, Size: int64(p.DataBlocks) * verity.BlockSize, Volatile: true}, true
		}
	}
	return Seed{}, false
}

func optionsLine(conf string) string {
	for _, l := range strings.Split(conf, "\n") {
		if v, ok := strings.CutPrefix(l, "options"); ok {
			return v
		}
	}
	return ""
}
