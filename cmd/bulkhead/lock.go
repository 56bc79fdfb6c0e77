package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"

	"github.com/bulkhead-dev/bulkhead/builder/build"
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

func runLock(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("lock", "[--arch amd64] [--store DIR] SPEC...", stderr)
	arch := fs.String("arch", "amd64", "architecture to pin images for (os linux), e.g. amd64, arm64, arm64/v8")
	storeDir := fs.String("store", "", "image store directory (default $BULKHEAD_STORE, else $XDG_CACHE_HOME/bulkhead/store)")
	asJSON := fs.Bool("json", false, "print the pins as a JSON array")
	if err := parseArgs(fs, args); err != nil {
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
	refs := build.Refs(spec)
	r, err := newLockResolver(*storeDir, *platform, filepath.Dir(specs[0]), build.LayerLimits(spec))
	if err != nil {
		return err
	}
	imgs, err := r.ResolveAll(ctx, build.RefStrings(refs))
	if err != nil {
		for _, e := range build.Positioned(err, refs) {
			fmt.Fprintln(stderr, e)
		}
		return exitError{1}
	}
	store, err := build.OpenStore(*storeDir)
	if err != nil {
		return err
	}
	ids, err := build.CheckTrust(ctx, spec, refs, imgs, nil, *platform, store, false, false)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitError{1}
	}
	path := resolve.LockPath(specs[0])
	if err := writeLock(path, refs, imgs, ids, *platform); err != nil {
		return err
	}
	if *asJSON {
		pins := make([]lockPin, len(refs))
		for i, ref := range refs {
			pins[i] = lockPin{Ref: ref.Ref, Name: imgs[i].Name, Digest: imgs[i].Digest.String(), Platform: platform.String(), Lock: path}
		}
		return writeJSON(stdout, pins)
	}
	for i, ref := range refs {
		fmt.Fprintf(stdout, "%s %s\n", ref.Ref, imgs[i].Digest)
	}
	return nil
}

// lockPin is one reference of lock's --json array.
type lockPin struct {
	Ref      string `json:"ref"`  // as the spec writes it
	Name     string `json:"name"` // expanded
	Digest   string `json:"digest"`
	Platform string `json:"platform"`
	Lock     string `json:"lock"` // the lock file written
}

func newLockResolver(storeDir string, platform v1.Platform, specDir string, limits resolve.Limits) (*resolve.Resolver, error) {
	store, err := build.OpenStore(storeDir)
	if err != nil {
		return nil, err
	}
	return resolve.NewResolver(resolve.WithStore(store), resolve.WithPlatform(platform), resolve.WithDir(specDir), resolve.WithLimits(limits))
}

// writeLock pins the resolved images in the lock file at path, keeping
// other platforms' pins of references the spec still uses.
func writeLock(path string, refs []build.Ref, imgs []*resolve.Image, ids []trust.KeyID, platform v1.Platform) error {
	lock, err := resolve.LoadLockIfExists(path)
	if err != nil {
		return err
	}
	used := map[string]bool{}
	for _, r := range refs {
		used[r.Ref] = true
	}
	lock.Keep(func(e resolve.LockEntry) bool { return used[e.Ref] && e.Platform != platform.String() })
	for _, img := range imgs {
		lock.Pin(img, platform)
	}
	pinKeys(lock, refs, ids, platform)
	return lock.Write(path)
}

// pinKeys records in the lock the key that verified each image.
func pinKeys(lock *resolve.Lock, refs []build.Ref, ids []trust.KeyID, platform v1.Platform) {
	for i, r := range refs {
		if e, ok := lock.Find(r.Ref, platform); ok && ids[i] != "" {
			e.Key = ids[i]
			lock.Set(e)
		}
	}
}
