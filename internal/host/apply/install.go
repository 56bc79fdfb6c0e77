package apply

import (
	"context"
	"fmt"
	"io"

	"github.com/bulkhead-dev/bulkhead/internal/update"
)

// Payloads is a version's content from somewhere other than a bundle
// stream (a registry pull, internal/update/pull): Install checks the
// signed manifest, then asks for the content.
type Payloads interface {
	// Prepare runs once every check passed and before anything on the
	// host changes: a pull fetches what it lacks here, so a failed
	// download leaves both slots and the ESP as they were.
	Prepare(ctx context.Context, t Target) error
	// WriteRoot writes the root image (file system and verity tree) at
	// the start of the slot; Install then syncs it and reads it back
	// against the manifest's verity root hash.
	WriteRoot(ctx context.Context, slot Slot) error
	// Open returns the named payload's content (update.PayloadKernel,
	// update.PayloadInitrd); Install reads it back against the manifest
	// once written.
	Open(ctx context.Context, name string) (io.Reader, error)
}

// Install checks a manifest whose signature the caller verified against
// h.Keys (signed by keyID) against the host h, and installs p into t
// with the same steps, checks and commit as Apply. name names the update
// in errors. A refusal is a *RefusedError and leaves the host as it was,
// as does an error from p.Prepare.
func Install(ctx context.Context, name string, m *update.Manifest, keyID string, p Payloads, h Host, t Target, opts ...Option) (*Result, error) {
	o, err := newOptions(opts)
	if err != nil {
		return nil, err
	}
	unlock, err := lockESP(t.ESP)
	if err != nil {
		return nil, &RefusedError{Bundle: name, Rule: RuleState, Err: err}
	}
	defer unlock()
	pl, rule, err := checkManifest(m, h, t, o.now())
	if err != nil {
		return nil, &RefusedError{Bundle: name, Rule: rule, Err: err}
	}
	pl.keyID = keyID
	if err := p.Prepare(ctx, t); err != nil {
		return nil, fmt.Errorf("installing %s: %w", name, err)
	}
	o.progress(StepChecked)
	entry, err := install(ctx, &pulled{ctx: ctx, p: p, m: m}, t, pl, o.progress)
	if err != nil {
		return nil, fmt.Errorf("installing %s: %w", name, err)
	}
	return &Result{Manifest: m, KeyID: keyID, Entry: entry}, nil
}

// pulled adapts Payloads to install.
type pulled struct {
	ctx  context.Context
	p    Payloads
	m    *update.Manifest
	done int // ESP payloads returned
}

func (s *pulled) writeRoot(ctx context.Context, t Target) error { return s.p.WriteRoot(ctx, t.Slot) }

// next returns the manifest's payloads after the root, in order.
func (s *pulled) next() (update.Payload, io.Reader, error) {
	if s.done+1 >= len(s.m.Payloads) {
		return update.Payload{}, nil, io.EOF
	}
	s.done++
	pl := s.m.Payloads[s.done]
	r, err := s.p.Open(s.ctx, pl.Name)
	if err != nil {
		return update.Payload{}, nil, err
	}
	return pl, io.LimitReader(r, pl.Size+1), nil
}

func (s *pulled) end() error { return nil }
