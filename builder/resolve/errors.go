package resolve

import (
	"errors"
	"fmt"
)

// Error is a failure to resolve one reference. The caller can prefix it with
// the spec position of the reference.
type Error struct {
	Ref string // the reference as written in the spec
	Err error
}

func (e *Error) Error() string { return fmt.Sprintf("resolving image %q: %v", e.Ref, e.Err) }

func (e *Error) Unwrap() error { return e.Err }

var (
	// ErrNotFound reports an image the registry, the layout or the store does not have.
	ErrNotFound = errors.New("image not found")
	// ErrCorrupt reports a blob whose content does not match its digest.
	ErrCorrupt = errors.New("content does not match its digest")
	// ErrNotPinned reports a reference the lock file does not pin, under
	// locked resolution.
	ErrNotPinned = errors.New("not pinned by the lock file")
)
