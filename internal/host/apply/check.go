package apply

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/bulkhead-dev/bulkhead/internal/bootentry"
	"github.com/bulkhead-dev/bulkhead/internal/update"
	"github.com/bulkhead-dev/bulkhead/internal/verity"
)

// Rule names what a refused bundle broke.
type Rule string

// The rules Apply checks before writing.
const (
	RuleBundle    Rule = "bundle"    // not a readable bundle
	RuleSignature Rule = "signature" // not signed by a key the host trusts
	RuleExpiry    Rule = "expiry"
	RuleArch      Rule = "arch"
	RuleHost      Rule = "host"    // built for another host
	RuleVersion   Rule = "version" // not newer, or below the floor, without a downgrade allowance
	RuleFrom      Rule = "from"    // the running version is older than the bundle's from
	RuleDigest    Rule = "digest"  // a payload does not match, or the bundle is truncated
	RuleSpace     Rule = "space"   // does not fit the slot or the ESP
	RuleState     Rule = "state"   // the host cannot take an update now
)

// RefusedError is a bundle refused before anything was written.
type RefusedError struct {
	Bundle string
	Rule   Rule
	Err    error
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("refusing update %s: %s: %v", e.Bundle, e.Rule, e.Err)
}

func (e *RefusedError) Unwrap() error { return e.Err }

// espSlack is room kept free on the ESP besides the version's files.
const espSlack = 1 << 20

// plan is a checked bundle and what installing it changes on the ESP.
type plan struct {
	m          *update.Manifest
	keyID      string
	entry      bootentry.Entry
	retire     []string // entries (paths in the ESP) that boot the target slot
	retireDirs []string // version directories (in bulkhead/) only they use
}

// check reads the whole bundle and the host's state and refuses the
// bundle if anything is wrong; it writes nothing.
func check(ctx context.Context, src Source, h Host, t Target, now time.Time) (*plan, error) {
	refuse := func(rule Rule, err error) error { return &RefusedError{Bundle: src.Name(), Rule: rule, Err: err} }
	rc, err := src.Open()
	if err != nil {
		return nil, refuse(RuleBundle, err)
	}
	defer rc.Close()
	r, err := update.NewReader(ctxReader{ctx, rc}, h.Keys)
	switch {
	case err != nil && ctx.Err() != nil:
		return nil, ctx.Err()
	case errors.Is(err, update.ErrSignature):
		return nil, refuse(RuleSignature, err)
	case errors.Is(err, update.ErrTruncated):
		return nil, refuse(RuleDigest, err)
	case err != nil:
		return nil, refuse(RuleBundle, err)
	}
	p, rule, err := checkManifest(r.Manifest(), h, t, now)
	if err != nil {
		return nil, refuse(rule, err)
	}
	p.keyID = r.KeyID()
	if err := r.CheckStored(); !errors.Is(err, io.EOF) {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, refuse(RuleDigest, err)
	}
	return p, nil
}

// checkManifest checks a signed manifest against the host's rules and
// state and plans the changes on the ESP.
func checkManifest(m *update.Manifest, h Host, t Target, now time.Time) (*plan, Rule, error) {
	if rule, err := checkRules(m, h, now); err != nil {
		return nil, rule, err
	}
	return checkHost(m, h, t)
}

// checkRules applies the manifest's rules to the host.
func checkRules(m *update.Manifest, h Host, now time.Time) (Rule, error) {
	switch {
	case !now.Before(m.Expires):
		return RuleExpiry, fmt.Errorf("expired at %s", m.Expires.Format(time.RFC3339))
	case m.Arch != h.Arch:
		return RuleArch, fmt.Errorf("built for %s, the host is %s", m.Arch, h.Arch)
	case h.Name != "" && m.Host != h.Name:
		return RuleHost, fmt.Errorf("built for host %s, this is %s", m.Host, h.Name)
	case m.From != "" && update.CompareVersions(h.Version, m.From) < 0:
		return RuleFrom, fmt.Errorf("applies on %s or later, the host runs %s", m.From, h.Version)
	}
	floor := h.Floor
	if floor == "" || update.CompareVersions(floor, h.Version) < 0 {
		floor = h.Version
	}
	if update.CompareVersions(m.Version, h.Version) <= 0 || update.CompareVersions(m.Version, floor) < 0 {
		if !slices.Contains(m.Downgrade, h.Version) {
			return RuleVersion, fmt.Errorf("version %s is not newer than %s (floor %s) and is not signed as a downgrade from it", m.Version, h.Version, floor)
		}
	}
	return "", nil
}

// checkHost checks the host's state (running entry blessed, target slot
// not the running one, room) and plans the changes on the ESP.
func checkHost(m *update.Manifest, h Host, t Target) (*plan, Rule, error) {
	entries, err := readEntries(t.ESP)
	if err != nil {
		return nil, RuleState, err
	}
	if err := checkRunning(h, t, entries); err != nil {
		return nil, RuleState, err
	}
	entry, err := m.Entry(t.SlotGUID, h.DataGUID)
	if err != nil {
		return nil, RuleBundle, err
	}
	p := &plan{m: m, entry: entry}
	p.retire, p.retireDirs = retirable(entries, h, t.SlotGUID, func(v verity.Params) bool {
		ok, err := verity.Holds(t.Slot, v)
		return ok && err == nil
	})
	for _, e := range entries {
		if e.name.Version == m.Version && !slices.Contains(p.retire, e.path) {
			return nil, RuleVersion, fmt.Errorf("version %s is installed on another slot (%s)", m.Version, e.file)
		}
	}
	if err := checkSpace(m, t, p.retireDirs); err != nil {
		return nil, RuleSpace, err
	}
	return p, "", nil
}

// checkRunning refuses an update while the running entry is not blessed
// (its fallback would be the slot being overwritten) or when the target
// slot is the running one.
func checkRunning(h Host, t Target, entries []espEntry) error {
	n, ok := bootentry.ParseName(h.Entry)
	if !ok {
		return fmt.Errorf("the running entry %q is not a bulkhead entry", h.Entry)
	}
	if n.Counted {
		return fmt.Errorf("the running entry %s is not blessed yet", h.Entry)
	}
	i := slices.IndexFunc(entries, func(e espEntry) bool { return e.file == h.Entry })
	if i < 0 {
		return fmt.Errorf("the running entry %s is not on the ESP", h.Entry)
	}
	if h.RootGUID == "" || t.SlotGUID == "" || equalGUID(t.SlotGUID, h.RootGUID) || equalGUID(t.SlotGUID, entries[i].root) {
		return fmt.Errorf("slot %s is the running root", t.SlotGUID)
	}
	return nil
}

func checkSpace(m *update.Manifest, t Target, freed []string) error {
	root, _ := m.Payload(update.PayloadRoot)
	if root.Size > t.SlotSize {
		return fmt.Errorf("root image of %d bytes does not fit the %d-byte slot", root.Size, t.SlotSize)
	}
	kernel, _ := m.Payload(update.PayloadKernel)
	initrd, _ := m.Payload(update.PayloadInitrd)
	image, _ := m.Payload(update.PayloadUKI)
	need := kernel.Size + initrd.Size + image.Size + espSlack
	free, err := freeSpace(t.ESP)
	if err != nil {
		return err
	}
	for _, d := range freed {
		free += dirSize(filepath.Join(t.ESP, bootentry.VersionsDir, d))
	}
	if need > free {
		return fmt.Errorf("the ESP has %d bytes free, the version needs %d", free, need)
	}
	return nil
}

// dirSize is the size of the regular files directly in dir.
func dirSize(dir string) int64 {
	des, _ := os.ReadDir(dir)
	var n int64
	for _, de := range des {
		if fi, err := de.Info(); err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
	}
	return n
}
