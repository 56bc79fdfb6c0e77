package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/bulkhead-dev/bulkhead/builder/build"
	"github.com/bulkhead-dev/bulkhead/builder/recipe"
	"github.com/bulkhead-dev/bulkhead/builder/resolve"
	"github.com/bulkhead-dev/bulkhead/builder/scan"
	"github.com/bulkhead-dev/bulkhead/builder/sign"
	"github.com/dustin/go-humanize"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func imageCommand() command {
	return groupCommand("image", "build component images from recipes, and manage the image store (image build, ls, rm, prune, save, load, push, pull, bump)", imageSubcommands())
}

// storeFlag adds --store to fs, defaulting to resolve.DefaultStoreDir.
func storeFlag(fs interface {
	String(name, value, usage string) *string
}) *string {
	return fs.String("store", "", "image store `DIR`ectory (default $BULKHEAD_STORE, else $XDG_CACHE_HOME/bulkhead/store, else ~/.cache/bulkhead/store)")
}

func runImageBuild(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("image build", "[flags] images/<name>...", stderr)
	storeDir := storeFlag(fs)
	cacheDir := fs.String("cache", "", "build cache directory (default: <store>/cache/recipe)")
	verbose := fs.Bool("v", false, "show build steps and tool output")
	signKey := fs.String("sign-key", "", signKeyUsage)
	var forSpecs stringList
	fs.Var(&forSpecs, "for", "build only the recipes whose images `SPEC` uses (repeatable: the specs merged); the boot loader too with --format")
	formats := fs.String("format", "kernel+initrd", "with --for: the output `formats` the spec will be built in (raw-efi and iso-efi need the boot loader)")
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return fmt.Errorf("%w: no recipes given", errUsage)
	}
	var key *sign.PrivateKey
	if *signKey != "" {
		var err error
		if key, err = loadSignKey(*signKey); err != nil { // before building: a bad key fails fast
			return err
		}
	}
	epoch, err := sourceDateEpoch()
	if err != nil {
		return err
	}
	recipes := make([]*recipe.Recipe, 0, fs.NArg())
	for _, p := range fs.Args() {
		r, err := recipe.Load(p)
		if err != nil {
			return err
		}
		recipes = append(recipes, r)
	}
	if len(forSpecs) > 0 {
		if recipes, err = recipesFor(recipes, forSpecs, *formats, stderr); err != nil {
			return err
		}
	}
	store, err := build.OpenStore(*storeDir)
	if err != nil {
		return err
	}
	if *cacheDir == "" {
		*cacheDir = filepath.Join(store.Dir(), "cache", "recipe")
	}
	opts := []recipe.Option{recipe.WithCacheDir(*cacheDir), recipe.WithSourceDateEpoch(epoch)}
	if *verbose {
		opts = append(opts, recipe.WithProgress(stderr))
	}
	for _, r := range recipes {
		stop := showProgress(stderr, r.Ref())
		err := buildOne(ctx, store, r, opts, key, stdout)
		stop()
		if err != nil {
			return err
		}
	}
	return nil
}

// buildOne builds (or re-assembles from the cache) one recipe into the
// store and, given a key, signs the stored image.
func buildOne(ctx context.Context, store *resolve.Store, r *recipe.Recipe, opts []recipe.Option, key *sign.PrivateKey, stdout io.Writer) error {
	start := time.Now()
	img, err := recipe.Build(ctx, r, opts...)
	if err != nil {
		return err
	}
	digest, err := store.WriteImage(r.Ref(), img)
	if err != nil {
		return err
	}
	signed := ""
	if key != nil {
		if err := signStoredRecipe(ctx, key, store, r.Ref(), digest); err != nil {
			return err
		}
		signed = "  signed by " + key.Public().ID()
	}
	size, err := compressedSize(img)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%-28s %s  %8s  %s%s\n", r.Ref(), scan.ShortDigests(digest.String()), humanize.Bytes(uint64(size)),
		time.Since(start).Round(100*time.Millisecond), signed)
	return nil
}

// compressedSize is the size of the image's layers as stored.
func compressedSize(img v1.Image) (int64, error) {
	m, err := img.Manifest()
	if err != nil {
		return 0, err
	}
	var n int64
	for _, l := range m.Layers {
		n += l.Size
	}
	return n, nil
}

// sourceDateEpoch reads SOURCE_DATE_EPOCH; unset means 0.
func sourceDateEpoch() (int64, error) {
	s := os.Getenv("SOURCE_DATE_EPOCH")
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a number of seconds", s)
	}
	return n, nil
}
