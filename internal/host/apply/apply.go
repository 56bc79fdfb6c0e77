// Package apply installs an update bundle (internal/update) on a running
// host: it checks everything it can before writing a byte (signature
// against the keys baked into the root, expiry, arch, host, version order
// and the anti-rollback floor, the from-version, the host's own state, the
// space, and every payload's digest), then streams the root into the
// inactive slot while hashing it, reads the slot back against the verity
// root hash, writes the version's kernel and initrd to the ESP and reads
// them back, and commits by renaming a fully written, synced boot entry
// into loader/entries (internal/bootentry: the same bytes raw-efi writes).
//
// It never writes the slot the host runs from, never removes the running
// entry, and refuses to run while that entry is not blessed, so a host
// always keeps one good version to fall back to. A power cut at any point
// leaves the host booting its current version (or, once the rename is
// done, trying the new one with a counted entry); running Apply again
// resumes from scratch.
//
// Install runs the same checks, writes and commit for an update whose
// signed manifest was verified elsewhere and whose payloads come from
// elsewhere (a registry pull: internal/update/pull).
//
// The slot and the ESP are abstract (a Slot, a directory), so the whole
// apply runs on plain files in tests. The package imports no builder code
// and no Sigstore or registry library: it is linked into the init.
package apply

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"time"

	"github.com/bulkhead-dev/bulkhead/internal/update"
)

// Slot is the inactive root partition: a block device on a host, a file in
// tests.
type Slot interface {
	io.ReaderAt
	io.WriterAt
	// Sync makes what was written durable, and makes later reads come
	// from the device rather than from a cache where it can.
	Sync() error
}

// Host is the running system as the apply sees it.
type Host struct {
	// Name, when set, must equal the bundle's host name.
	Name string
	// Arch is the running binaries' GOARCH.
	Arch string
	// Version is the running version and Floor the anti-rollback floor:
	// a bundle not newer than Version, or older than Floor, needs a
	// signed downgrade from Version. Apply never changes the floor; the
	// caller raises it when a new version is blessed, never on apply, so
	// the fallback slot stays bootable.
	Version, Floor string
	// Entry is the running boot entry's file name in loader/entries
	// (blessed: without a counter).
	Entry string
	// RootGUID and DataGUID are the partition GUIDs of the running root
	// and of the data partition.
	RootGUID, DataGUID string
	// Keys are the keys baked into the running root (update.KeysPath).
	Keys []*update.PublicKey
}

// Target is where an update goes.
type Target struct {
	// Slot is the inactive root partition, SlotSize its size in bytes and
	// SlotGUID its partition GUID.
	Slot     Slot
	SlotSize int64
	SlotGUID string
	// ESP is the directory the ESP is mounted on.
	ESP string
}

// Source is a bundle that can be read more than once: Apply reads it whole
// to check it before it writes anything, then again to install it.
type Source interface {
	Open() (io.ReadCloser, error)
	// Name names the bundle in errors.
	Name() string
}

// File is a bundle file.
func File(path string) Source { return fileSource(path) }

type fileSource string

func (f fileSource) Open() (io.ReadCloser, error) { return os.Open(string(f)) }
func (f fileSource) Name() string                 { return string(f) }

// Result describes an applied update.
type Result struct {
	Manifest *update.Manifest
	// KeyID names the trusted key that signed it.
	KeyID string
	// Entry is the committed entry, relative to the ESP.
	Entry string
}

type options struct {
	now      func() time.Time
	progress func(Step)
}

// Step is a point in an apply that progress is reported at.
type Step string

// The steps, in order.
const (
	StepChecked    Step = "checked"     // the bundle passed every check; nothing written yet
	StepSlot       Step = "slot"        // writing the root into the inactive slot
	StepSlotDone   Step = "slot-done"   // the slot is written and read back
	StepESP        Step = "esp"         // writing the version's kernel and initrd
	StepESPDone    Step = "esp-done"    // they are written and read back
	StepCommit     Step = "commit"      // the entry is written under a temporary name; the rename is next
	StepCommitDone Step = "commit-done" // the entry is in place: the next boot tries the new version
)

// WithProgress calls f at each Step, synchronously.
func WithProgress(f func(Step)) Option {
	return func(o *options) error {
		if f == nil {
			return errors.New("nil progress function")
		}
		o.progress = f
		return nil
	}
}

// Option configures Apply.
type Option func(*options) error

// WithClock sets the clock that expiry is checked against (default
// time.Now).
func WithClock(now func() time.Time) Option {
	return func(o *options) error {
		if now == nil {
			return errors.New("nil clock")
		}
		o.now = now
		return nil
	}
}

func newOptions(opts []Option) (*options, error) {
	o := &options{now: time.Now, progress: func(Step) {}}
	for _, opt := range opts {
		if err := opt(o); err != nil {
			return nil, fmt.Errorf("applying update: %w", err)
		}
	}
	return o, nil
}

// Apply checks the bundle src against the host h and installs it into t.
// A refusal is a *RefusedError and leaves the slot and the ESP as they
// were. Any later error leaves the host on its current version; Apply may
// be run again.
func Apply(ctx context.Context, src Source, h Host, t Target, opts ...Option) (*Result, error) {
	o, err := newOptions(opts)
	if err != nil {
		return nil, err
	}
	unlock, err := lockESP(t.ESP)
	if err != nil {
		return nil, &RefusedError{Bundle: src.Name(), Rule: RuleState, Err: err}
	}
	defer unlock()
	p, err := check(ctx, src, h, t, o.now())
	if err != nil {
		return nil, err
	}
	o.progress(StepChecked)
	bs, closer, err := openBundle(ctx, src, h, p)
	if err != nil {
		return nil, fmt.Errorf("applying %s: %w", src.Name(), err)
	}
	defer closer.Close()
	entry, err := install(ctx, bs, t, p, o.progress)
	if err != nil {
		return nil, fmt.Errorf("applying %s: %w", src.Name(), err)
	}
	return &Result{Manifest: p.m, KeyID: p.keyID, Entry: entry}, nil
}

// install writes a checked version from src: retire what boots the target
// slot, the slot, the version's files, then the entry (the commit).
func install(ctx context.Context, src payloadSource, t Target, p *plan, progress func(Step)) (string, error) {
	if err := retire(t.ESP, p.retire, p.retireDirs); err != nil {
		return "", err
	}
	progress(StepSlot)
	if err := src.writeRoot(ctx, t); err != nil {
		return "", fmt.Errorf("writing the root to slot %s: %w", t.SlotGUID, err)
	}
	if err := finishSlot(ctx, t, p.m); err != nil {
		return "", err
	}
	progress(StepSlotDone)
	progress(StepESP)
	if p.entry.UKI {
		progress(StepESPDone)
		entry, err := commitUKI(ctx, src, t.ESP, p.entry, func() { progress(StepCommit) })
		if err == nil {
			progress(StepCommitDone)
		}
		return entry, err
	}
	if err := writeVersion(ctx, src.next, t.ESP, p.entry); err != nil {
		return "", err
	}
	progress(StepESPDone)
	if err := src.end(); err != nil {
		return "", err
	}
	entry, err := commit(t.ESP, p.entry, func() { progress(StepCommit) })
	if err == nil {
		progress(StepCommitDone)
	}
	return entry, err
}

// payloadSource is where install reads a checked version's payloads.
type payloadSource interface {
	// writeRoot writes the root image at the start of the slot.
	writeRoot(ctx context.Context, t Target) error
	// next returns the next ESP payload's decoded content, which ends
	// with io.EOF only once it matched the signed manifest.
	next() (update.Payload, io.Reader, error)
	// end makes sure nothing follows the last payload.
	end() error
}

// bundleStream reads the payloads from a bundle stream.
type bundleStream struct{ r *update.Reader }

// openBundle opens src again for installing and makes sure it still
// carries the checked manifest.
func openBundle(ctx context.Context, src Source, h Host, p *plan) (bundleStream, io.Closer, error) {
	rc, err := src.Open()
	if err != nil {
		return bundleStream{}, nil, err
	}
	r, err := update.NewReader(ctxReader{ctx, rc}, h.Keys)
	if err != nil {
		rc.Close()
		return bundleStream{}, nil, err
	}
	if !reflect.DeepEqual(r.Manifest(), p.m) {
		rc.Close()
		return bundleStream{}, nil, errors.New("the bundle changed between its check and its installation")
	}
	return bundleStream{r}, rc, nil
}

func (b bundleStream) writeRoot(ctx context.Context, t Target) error {
	p, pr, err := b.r.Next()
	if err != nil {
		return fmt.Errorf("reading root: %w", err)
	}
	if p.Name != update.PayloadRoot {
		return fmt.Errorf("payload %s where the root was expected", p.Name)
	}
	return copyAt(ctx, t.Slot, pr)
}

func (b bundleStream) next() (update.Payload, io.Reader, error) { return b.r.Next() }

func (b bundleStream) end() error {
	if _, _, err := b.r.Next(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("reading bundle end: %w", err)
	}
	return nil
}
