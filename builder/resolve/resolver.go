package resolve

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/singleflight"
)

// Parallelism is how many images ResolveAll fetches at once.
const Parallelism = 4

// Resolver resolves spec references to images in a Store. It is safe for
// concurrent use.
type Resolver struct {
	store     *Store
	platform  v1.Platform
	keychain  authn.Keychain
	lock      *Lock
	locked    bool
	offline   bool
	transport http.RoundTripper
	insecure  map[string]bool
	dir       string

	flight singleflight.Group
	budget *budget // nil: no limits
}

// Option configures a Resolver.
type Option func(*Resolver) error

// WithStore sets the store; the default opens DefaultStoreDir.
func WithStore(s *Store) Option {
	return func(r *Resolver) error { r.store = s; return nil }
}

// WithPlatform sets the platform to pick from multi-platform images; the
// default is linux/amd64.
func WithPlatform(p v1.Platform) Option {
	return func(r *Resolver) error {
		if p.OS == "" || p.Architecture == "" {
			return fmt.Errorf("platform %q: need an OS and an architecture", p.String())
		}
		r.platform = p
		return nil
	}
}

// WithKeychain sets the registry credentials; the default is
// authn.DefaultKeychain (the Docker config file and its helpers).
func WithKeychain(k authn.Keychain) Option {
	return func(r *Resolver) error { r.keychain = k; return nil }
}

// WithLock makes the resolver use the digests the lock pins.
func WithLock(l *Lock) Option {
	return func(r *Resolver) error { r.lock = l; return nil }
}

// WithLocked makes a reference the lock does not pin an error.
func WithLocked(locked bool) Option {
	return func(r *Resolver) error { r.locked = locked; return nil }
}

// WithOffline keeps the resolver off the network: tags resolve to what the
// store last recorded, and anything missing from the store is an error.
func WithOffline(offline bool) Option {
	return func(r *Resolver) error { r.offline = offline; return nil }
}

// WithTransport sets the HTTP transport for registry requests.
func WithTransport(t http.RoundTripper) Option {
	return func(r *Resolver) error { r.transport = t; return nil }
}

// WithInsecureRegistries lets the named registries (host[:port]) be reached
// over plain HTTP.
func WithInsecureRegistries(hosts ...string) Option {
	return func(r *Resolver) error {
		for _, h := range hosts {
			r.insecure[h] = true
		}
		return nil
	}
}

// WithDir sets the directory relative oci: layout paths start from,
// normally the spec's directory; the default is the working directory.
func WithDir(dir string) Option {
	return func(r *Resolver) error { r.dir = dir; return nil }
}

// NewResolver returns a Resolver configured by opts.
func NewResolver(opts ...Option) (*Resolver, error) {
	r := &Resolver{
		platform: v1.Platform{OS: "linux", Architecture: "amd64"},
		keychain: authn.DefaultKeychain,
		insecure: map[string]bool{},
	}
	for _, o := range opts {
		if err := o(r); err != nil {
			return nil, err
		}
	}
	if r.locked && r.lock == nil {
		return nil, errors.New("locked resolution needs a lock file")
	}
	if r.store == nil {
		dir, err := DefaultStoreDir()
		if err != nil {
			return nil, err
		}
		if r.store, err = OpenStore(dir); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Platform is the platform the resolver picks.
func (r *Resolver) Platform() v1.Platform { return r.platform }

// Store is the resolver's store.
func (r *Resolver) Store() *Store { return r.store }

// Resolve resolves one reference as written in a spec. Errors are *Error.
func (r *Resolver) Resolve(ctx context.Context, ref string) (*Image, error) {
	img, err := r.resolveShared(ctx, ref)
	if err != nil {
		return nil, &Error{Ref: ref, Err: err}
	}
	return img, nil
}

// ResolveAll resolves refs, Parallelism at a time, and returns the images in
// the order of refs. A reference listed twice is resolved once and its
// entries share one *Image. The error joins one *Error per failed reference,
// in order; the failed entries are nil.
func (r *Resolver) ResolveAll(ctx context.Context, refs []string) ([]*Image, error) {
	imgs := make([]*Image, len(refs))
	errs := make([]error, len(refs))
	first := map[string]int{}
	var g errgroup.Group
	g.SetLimit(Parallelism)
	for i, ref := range refs {
		if _, ok := first[ref]; ok {
			continue
		}
		first[ref] = i
		g.Go(func() error {
			imgs[i], errs[i] = r.Resolve(ctx, ref)
			return nil
		})
	}
	g.Wait() //nolint:errcheck // the goroutines report through errs
	for i, ref := range refs {
		imgs[i] = imgs[first[ref]]
	}
	return imgs, errors.Join(errs...)
}

// resolveShared resolves ref, sharing the work with a concurrent resolution
// of the same image under another spelling.
func (r *Resolver) resolveShared(ctx context.Context, s string) (*Image, error) {
	ref, err := parseRef(s, r.dir, r.insecure)
	if err != nil {
		return nil, err
	}
	pin, err := r.pin(ref)
	if err != nil {
		return nil, err
	}
	key := ref.name
	if pin != nil {
		key += "|" + pin.Digest.String()
	}
	v, err, _ := r.flight.Do(key, func() (any, error) { return r.resolve(ctx, ref, pin) })
	if err != nil {
		return nil, err
	}
	img := *v.(*Image)
	img.Ref = s
	return &img, nil
}

func (r *Resolver) resolve(ctx context.Context, ref *reference, pin *LockEntry) (*Image, error) {
	var img *Image
	var err error
	switch {
	case pin != nil:
		img, err = r.byDigest(ctx, ref.atDigest(pin.Digest))
		if err == nil && img.Digest != pin.Digest {
			err = fmt.Errorf("the lock file pins %s, which is an index, not a %s image", pin.Digest, r.platform)
		}
		if err == nil {
			img.Index = pin.Index
		}
	case ref.digest != nil:
		img, err = r.byDigest(ctx, ref)
	default:
		img, err = r.byTag(ctx, ref)
	}
	if err != nil {
		return nil, err
	}
	img.Name = ref.name
	return img, r.checkPlatform(img)
}

// pin returns the lock entry for ref, if any.
func (r *Resolver) pin(ref *reference) (*LockEntry, error) {
	if r.lock == nil {
		return nil, nil
	}
	e, ok := r.lock.Find(ref.raw, r.platform)
	if !ok {
		if r.locked {
			return nil, fmt.Errorf("image %s is %w for %s", ref.raw, ErrNotPinned, r.platform)
		}
		return nil, nil
	}
	if e.Name != ref.name {
		return nil, fmt.Errorf("the lock file pins it as %s, but it expands to %s", e.Name, ref.name)
	}
	if d := ref.digest; d != nil && *d != e.Digest && (e.Index == nil || *d != *e.Index) {
		return nil, fmt.Errorf("the reference names %s but the lock file pins %s", d, e.Digest)
	}
	return &e, nil
}

// byDigest resolves a reference that names a digest: from the store if it
// is there, else from its origin.
func (r *Resolver) byDigest(ctx context.Context, ref *reference) (*Image, error) {
	h := *ref.digest
	if !r.store.hasBlob(h) {
		desc, err := r.fetch(ctx, ref)
		if err != nil {
			return nil, err
		}
		if err := r.store.setEntry(ref.name, desc, r.source(ref)); err != nil {
			return nil, err
		}
	}
	return r.fromStore(ctx, ref, h)
}

// byTag resolves a tag: a locally built image (or, offline, whatever the
// store has) from the store, anything else by asking its origin.
func (r *Resolver) byTag(ctx context.Context, ref *reference) (*Image, error) {
	entry, ok, err := r.store.entry(ref.name)
	if err != nil {
		return nil, err
	}
	if ok && (entry.Annotations[AnnotationSource] == SourceLocal || r.offline && !ref.isLayout()) {
		return r.fromStore(ctx, ref, entry.Digest)
	}
	desc, err := r.fetch(ctx, ref)
	if err != nil && !ok && !ref.isLayout() {
		return nil, r.store.notStored(ref.name, err)
	}
	if err != nil {
		return nil, err
	}
	if !ok || entry.Digest != desc.Digest {
		if err := r.store.setEntry(ref.name, desc, r.source(ref)); err != nil {
			return nil, err
		}
	}
	return r.fromStore(ctx, ref, desc.Digest)
}

// fromStore loads a stored image or index; for an index it picks the
// platform's image, fetching it if the store lacks it.
func (r *Resolver) fromStore(ctx context.Context, ref *reference, h v1.Hash) (*Image, error) {
	raw, err := r.store.readBlob(h)
	if err != nil {
		return nil, err
	}
	if !sniffMediaType(raw).IsIndex() {
		return r.store.loadImage(ctx, h, r.budget)
	}
	child, err := r.pick(raw)
	if err != nil {
		return nil, fmt.Errorf("index %s: %w", h, err)
	}
	if !r.store.hasBlob(child.Digest) {
		if _, err := r.fetch(ctx, ref.atDigest(child.Digest)); err != nil {
			return nil, err
		}
	}
	img, err := r.store.loadImage(ctx, child.Digest, r.budget)
	if err != nil {
		return nil, err
	}
	img.Index = &h
	return img, nil
}

func (r *Resolver) source(ref *reference) string {
	if ref.isLayout() {
		return SourceLayout
	}
	return SourceRegistry
}

// checkPlatform refuses an image whose config names another platform.
func (r *Resolver) checkPlatform(img *Image) error {
	c := img.Config
	if c.Architecture == "" {
		return nil
	}
	if c.OS != r.platform.OS || c.Architecture != r.platform.Architecture ||
		r.platform.Variant != "" && c.Variant != r.platform.Variant {
		got := v1.Platform{OS: c.OS, Architecture: c.Architecture, Variant: c.Variant}
		return fmt.Errorf("image %s is for %s, not %s", img.Digest, got.String(), r.platform.String())
	}
	return nil
}
