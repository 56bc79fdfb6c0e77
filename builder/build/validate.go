package build

import (
	"context"
	"errors"

	"github.com/bulkhead-dev/bulkhead/builder/config"
	"github.com/bulkhead-dev/bulkhead/builder/resolve"
	"github.com/bulkhead-dev/bulkhead/builder/trust"
)

// Validation is what Validate found.
type Validation struct {
	// Spec is the merged spec (its Warnings included); nil when it did not
	// load.
	Spec *config.Spec
	// Problems are the errors, in the order the checks ran: what Build
	// would refuse.
	Problems []Problem
	// Unchecked are the images the store does not hold (or holds without
	// their signatures): the checks of image contents did not run when
	// there are any.
	Unchecked []Ref
}

// Validate runs every check Build runs short of the gates and writing:
// Load and the spec-level part of Check and, when the store holds every
// image the formats need, Resolve (from the store alone, never a
// registry), Assemble and CheckContainers: users, commands and the mount
// targets of read-only roots. It never creates the store, nor makes one of
// a directory that is not a store. The error is
// only for what stops validation itself; the spec's problems are in the
// Validation.
func (b *Builder) Validate(ctx context.Context) (*Validation, error) {
	v := &Validation{}
	l, err := b.Load()
	if err != nil {
		return v.fail(err)
	}
	v.Spec = l.Spec
	if err := b.checkSpec(l); err != nil {
		return v.fail(err)
	}
	refs := BuildRefs(l.Spec, b.o.formats)
	dir := b.o.store
	if dir == "" {
		if dir, err = resolve.DefaultStoreDir(); err != nil {
			return nil, err
		}
	}
	if !resolve.IsStore(dir) {
		v.Unchecked = refs
		return v, nil
	}
	offline := *b
	offline.o.offline = true
	res, err := offline.resolveRefs(ctx, l.Spec, refs)
	if err != nil {
		return v.unresolved(err, refs)
	}
	host, err := b.Assemble(ctx, l, res)
	if err != nil {
		return v.fail(err)
	}
	if err := CheckContainers(l.Spec, host.Tree); err != nil {
		return v.fail(err)
	}
	return v, nil
}

// fail records err as the spec's problems; a cancelled validation is an
// error.
func (v *Validation) fail(err error) (*Validation, error) {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return nil, err
	}
	v.Problems = append(v.Problems, Problems(err)...)
	return v, nil
}

// unresolved sorts resolution errors: an image (or a signature) the store
// does not hold leaves the image checks undone; any other error is a
// problem.
func (v *Validation) unresolved(err error, refs []Ref) (*Validation, error) {
	var ie *ImageErrors
	if !errors.As(err, &ie) {
		return v.fail(err)
	}
	missing := map[string]bool{}
	var other []error
	for _, e := range ie.Errs {
		var re *resolve.Error
		var te *trust.Error
		switch {
		case errors.As(e, &re) && errors.Is(e, resolve.ErrNotFound):
			missing[re.Ref] = true
		case errors.As(e, &te) && errors.Is(e, trust.ErrNoSignature):
			missing[te.Ref] = true
		default:
			// Trust failures come joined in one error.
			for _, j := range joined(e) {
				if errors.As(j, &te) && errors.Is(j, trust.ErrNoSignature) {
					missing[te.Ref] = true
				} else {
					other = append(other, j)
				}
			}
		}
	}
	for _, r := range refs {
		if missing[r.Ref] {
			v.Unchecked = append(v.Unchecked, r)
		}
	}
	if len(other) > 0 {
		return v.fail(errors.Join(other...))
	}
	return v, nil
}

// joined is the errors err joins, or err alone.
func joined(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
