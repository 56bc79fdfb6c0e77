package build

import (
	"context"
	"errors"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/bulkhead-dev/bulkhead/builder/config"
	"github.com/bulkhead-dev/bulkhead/builder/resolve"
	"github.com/bulkhead-dev/bulkhead/builder/trust"
)

// Resolved are the spec's images, digest-pinned and checked against its
// trust policy.
type Resolved struct {
	// Images by reference as the spec writes it.
	Images map[string]*resolve.Image
	// List is the images in spec order.
	List []Image
}

// Image is a resolved image reference.
type Image struct {
	Ref    string
	Name   string
	Digest string
}

// ImageErrors are problems with the spec's images, one per image, each
// naming where the spec refers to it ("host.yml:8:12: resolving image
// ..."): resolution failures or trust policy failures.
type ImageErrors struct{ Errs []error }

func (e *ImageErrors) Error() string {
	lines := make([]string, len(e.Errs))
	for i, err := range e.Errs {
		lines[i] = err.Error()
	}
	return strings.Join(lines, "\n")
}

func (e *ImageErrors) Unwrap() []error { return e.Errs }

// Resolve resolves the images a build of l needs, pinned by the lock file
// next to the first spec when there is one, and checks them against the
// spec's trust policy.
func (b *Builder) Resolve(ctx context.Context, l *Loaded) (*Resolved, error) {
	refs := BuildRefs(l.Spec, b.o.formats)
	b.step("resolve", "resolving %d image references", len(refs))
	res, err := b.resolveRefs(ctx, l.Spec, refs)
	if err != nil {
		return nil, err
	}
	for _, img := range res.List {
		b.step("resolve", "  %s -> %s", img.Ref, img.Digest)
	}
	return res, nil
}

// ResolveSpec resolves every image reference of the spec (Refs), as Resolve
// does; the scan of a spec uses it.
func (b *Builder) ResolveSpec(ctx context.Context, l *Loaded) (*Resolved, error) {
	return b.resolveRefs(ctx, l.Spec, Refs(l.Spec))
}

func (b *Builder) resolveRefs(ctx context.Context, spec *config.Spec, refs []Ref) (*Resolved, error) {
	first := b.specs[0]
	lock, err := resolve.LoadSpecLock(first, b.o.locked)
	if err != nil {
		return nil, err
	}
	store, err := b.store()
	if err != nil {
		return nil, err
	}
	r, err := resolve.NewResolver(resolve.WithStore(store), resolve.WithPlatform(b.o.platform), resolve.WithLimits(LayerLimits(spec)),
		resolve.WithDir(filepath.Dir(first)), resolve.WithLock(lock),
		resolve.WithLocked(b.o.locked), resolve.WithOffline(b.o.offline))
	if err != nil {
		return nil, err
	}
	imgs, err := r.ResolveAll(ctx, RefStrings(refs))
	if err != nil {
		return nil, &ImageErrors{Positioned(err, refs)}
	}
	if _, err := CheckTrust(ctx, spec, refs, imgs, lock, b.o.platform, store, b.o.offline, b.o.locked); err != nil {
		return nil, &ImageErrors{[]error{err}}
	}
	res := &Resolved{Images: map[string]*resolve.Image{}, List: []Image{}}
	for i, ref := range refs {
		res.Images[ref.Ref] = imgs[i]
		res.List = append(res.List, Image{Ref: ref.Ref, Name: imgs[i].Name, Digest: imgs[i].Digest.String()})
	}
	return res, nil
}

// OpenStore opens the image store in dir, or in resolve.DefaultStoreDir
// when dir is "".
func OpenStore(dir string) (*resolve.Store, error) {
	if dir == "" {
		d, err := resolve.DefaultStoreDir()
		if err != nil {
			return nil, err
		}
		dir = d
	}
	return resolve.OpenStore(dir)
}

// LayerLimits are the spec's policy.limits on uncompressed layers.
func LayerLimits(spec *config.Spec) resolve.Limits {
	l := spec.Policy.Sizes()
	return resolve.Limits{Layer: l.Layer, Image: l.Image, Host: l.Host}
}

// Positioned prefixes each resolution error with the spec position of its
// reference.
func Positioned(err error, refs []Ref) []error {
	pos := map[string]config.Pos{}
	for _, r := range refs {
		pos[r.Ref] = r.Pos
	}
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	out := make([]error, len(errs))
	for i, e := range errs {
		var re *resolve.Error
		if errors.As(e, &re) && pos[re.Ref] != (config.Pos{}) {
			e = &config.PosError{Pos: pos[re.Ref], Err: e}
		}
		out[i] = e
	}
	return out
}

// CheckTrust checks the resolved images (imgs[i] for refs[i]) against the
// spec's trust policy and returns the key that verified each one ("" where
// the policy asks for none). requirePinned turns on the digest requirement
// (locked and release builds). The error lists every failure, one per
// line, each as "host.yml:8:12: image "x": signature: ...".
func CheckTrust(ctx context.Context, spec *config.Spec, refs []Ref, imgs []*resolve.Image, lock *resolve.Lock,
	platform v1.Platform, store *resolve.Store, offline, requirePinned bool) ([]trust.KeyID, error) {
	policy, err := trust.NewPolicy(spec.Trust)
	if err != nil {
		return nil, err
	}
	if requirePinned {
		policy.RequirePinned()
	}
	crefs := make([]config.Ref, len(refs))
	for i, r := range refs {
		crefs[i] = config.Ref{Ref: r.Ref, Pos: r.Pos}
	}
	return trust.CheckAll(ctx, policy, crefs, imgs, lock, platform, trust.DefaultSources(store, offline))
}
