package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/bulkhead-dev/bulkhead/builder/config"
	"github.com/bulkhead-dev/bulkhead/builder/resolve"
	"github.com/bulkhead-dev/bulkhead/builder/trust"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func lockCommand() command {
	return command{
		name:    "lock",
		summary: "pin every image of the spec to a digest in its lock file",
		run:     runLock,
	}
}

// specRef is an image reference of a spec and where it was written.
type specRef struct {
	ref string
	pos config.Pos
}

func runLock(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("lock", "[--arch amd64] [--store DIR] SPEC...", stderr)
	arch := fs.String("arch", "amd64", "architecture to pin images for (os linux), e.g. amd64, arm64, arm64/v8")
	storeDir := fs.String("store", "", "image store directory (default $BULKHEAD_STORE, else $XDG_CACHE_HOME/bulkhead/store)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	specs := fs.Args()
	if len(specs) == 0 {
		fs.Usage()
		return fmt.Errorf("%w: no spec files given", errUsage)
	}
	platform, err := v1.ParsePlatform("linux/" + *arch)
	if err != nil {
		return fmt.Errorf("%w: --arch %q: %v", errUsage, *arch, err)
	}
	spec, err := config.Load(specs...)
	if err != nil {
		return err
	}
	refs := specRefs(spec)
	r, err := newLockResolver(*storeDir, *platform, filepath.Dir(specs[0]), layerLimits(spec))
	if err != nil {
		return err
	}
	imgs, err := r.ResolveAll(ctx, refStrings(refs))
	if err != nil {
		for _, e := range positioned(err, refs) {
			fmt.Fprintln(stderr, e)
		}
		return exitError{1}
	}
	store, err := openStore(*storeDir)
	if err != nil {
		return err
	}
	ids, err := checkTrust(ctx, spec, refs, imgs, nil, *platform, store, false, false)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitError{1}
	}
	path := resolve.LockPath(specs[0])
	if err := writeLock(path, refs, imgs, ids, *platform); err != nil {
		return err
	}
	for i, ref := range refs {
		fmt.Fprintf(stdout, "%s %s\n", ref.ref, imgs[i].Digest)
	}
	return nil
}

func openStore(storeDir string) (*resolve.Store, error) {
	if storeDir == "" {
		d, err := resolve.DefaultStoreDir()
		if err != nil {
			return nil, err
		}
		storeDir = d
	}
	return resolve.OpenStore(storeDir)
}

func newLockResolver(storeDir string, platform v1.Platform, specDir string, limits resolve.Limits) (*resolve.Resolver, error) {
	store, err := openStore(storeDir)
	if err != nil {
		return nil, err
	}
	return resolve.NewResolver(resolve.WithStore(store), resolve.WithPlatform(platform), resolve.WithDir(specDir), resolve.WithLimits(limits))
}

// writeLock pins the resolved images in the lock file at path, keeping
// other platforms' pins of references the spec still uses.
func writeLock(path string, refs []specRef, imgs []*resolve.Image, ids []trust.KeyID, platform v1.Platform) error {
	lock, err := resolve.LoadLockIfExists(path)
	if err != nil {
		return err
	}
	used := map[string]bool{}
	for _, r := range refs {
		used[r.ref] = true
	}
	lock.Keep(func(e resolve.LockEntry) bool { return used[e.Ref] && e.Platform != platform.String() })
	for _, img := range imgs {
		lock.Pin(img, platform)
	}
	pinKeys(lock, refs, ids, platform)
	return lock.Write(path)
}

// specRefs lists the spec's image references in spec order, each once, at
// its first position.
func specRefs(s *config.Spec) []specRef {
	var refs []specRef
	seen := map[string]bool{}
	add := func(ref string, pos config.Pos) {
		if ref == "" || seen[ref] {
			return
		}
		seen[ref] = true
		refs = append(refs, specRef{ref, pos})
	}
	add(s.Kernel.Image, s.Kernel.Pos)
	for _, r := range s.Init {
		add(r.Ref, r.Pos)
	}
	for _, list := range [][]*config.Image{s.Onboot, s.Onshutdown, s.Services} {
		for _, img := range list {
			add(img.Image, img.ImagePos)
		}
	}
	for _, v := range s.Volumes {
		add(v.Image, v.ImagePos)
	}
	if s.Disk != nil {
		b := bootloaderRef(s)
		add(b.ref, b.pos)
	}
	if wantsUKI(s) {
		add(defaultStub, s.Boot.Pos)
	}
	return refs
}

// appendRef adds r to refs unless it is there already.
func appendRef(refs []specRef, r specRef) []specRef {
	for _, have := range refs {
		if have.ref == r.ref {
			return refs
		}
	}
	return append(refs, r)
}

func refStrings(refs []specRef) []string {
	out := make([]string, len(refs))
	for i, r := range refs {
		out[i] = r.ref
	}
	return out
}

// positioned prefixes each resolution error with the spec position of its
// reference.
func positioned(err error, refs []specRef) []error {
	pos := map[string]config.Pos{}
	for _, r := range refs {
		pos[r.ref] = r.pos
	}
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	out := make([]error, len(errs))
	for i, e := range errs {
		var re *resolve.Error
		if errors.As(e, &re) && pos[re.Ref] != (config.Pos{}) {
			e = fmt.Errorf("%s: %w", pos[re.Ref], e)
		}
		out[i] = e
	}
	return out
}
