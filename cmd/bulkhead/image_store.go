package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/bulkhead-dev/bulkhead/builder/resolve"
	"github.com/dustin/go-humanize"
	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// imageSubcommands are image's verbs: building recipes and managing the
// store.
func imageSubcommands() []subcommand {
	return []subcommand{
		{"build", "build component images from recipes (images/<name>/) into the store", runImageBuild},
		{"ls", "list the images in the store, with their sizes", runImageLs},
		{"rm", "remove images from the store (their blobs go at the next prune)", runImageRm},
		{"prune", "drop stale entries, delete the blobs and layer caches no image uses and the cached initrd archives", runImagePrune},
		{"save", "write images to a tar of an OCI image layout", runImageSave},
		{"load", "read images from a tar of an OCI image layout", runImageLoad},
		{"push", "push a stored image to a registry", runImagePush},
		{"pull", "pull an image from a registry into the store", runImagePull},
		{"bump", "move the Debian pins of recipes (images/<name>/) to what apt serves now, and show each change", runImageBump},
	}
}

// storeDir is --store, else the default store.
func storeDir(flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	return resolve.DefaultStoreDir()
}

// openStoreToRead opens the store for a verb that only reads it: a
// missing one is an error, never created.
func openStoreToRead(flag string) (*resolve.Store, error) {
	dir, err := storeDir(flag)
	if err != nil {
		return nil, err
	}
	return resolve.OpenExistingStore(dir)
}

func runImageLs(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("image ls", "[--all] [--json] [--store DIR]", stderr)
	dir := storeFlag(fs)
	all := fs.Bool("all", false, "also list stale entries (blobs missing: image prune drops them)")
	asJSON := fs.Bool("json", false, "print the entries as a JSON array (stale ones included, complete: false)")
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("%w: image ls takes no arguments", errUsage)
	}
	store, err := openStoreToRead(*dir)
	if err != nil {
		return err
	}
	ents, err := store.Entries()
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(stdout, ents)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tDIGEST\tSIZE\tSOURCE")
	stale := 0
	for _, e := range ents {
		if !e.Complete {
			stale++
			if !*all {
				continue
			}
		}
		note := ""
		if !e.Complete {
			note = " (stale)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s%s\n", resolve.ShortName(e.Name), shortDigest(e.Digest.String()), humanize.IBytes(uint64(e.Size)), e.Source, note)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if stale > 0 && !*all {
		fmt.Fprintf(stderr, "%d stale entries hidden (their blobs are missing): --all lists them, bulkhead image prune drops them\n", stale)
	}
	return nil
}

// shortDigest is sha256: and the first 12 hex digits, as docker shows.
func shortDigest(d string) string {
	if len(d) > len("sha256:")+12 {
		return d[:len("sha256:")+12]
	}
	return d
}

func runImageRm(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("image rm", "[--store DIR] NAME...", stderr)
	dir := storeFlag(fs)
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return fmt.Errorf("%w: name the images to remove", errUsage)
	}
	store, err := openStoreToRead(*dir)
	if err != nil {
		return err
	}
	if err := store.Remove(fs.Args()...); err != nil {
		return err
	}
	for _, n := range fs.Args() {
		fmt.Fprintf(stdout, "removed %s\n", n)
	}
	return nil
}

func runImagePrune(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("image prune", "[--grace DURATION] [--json] [--store DIR]", stderr)
	dir := storeFlag(fs)
	grace := fs.Duration("grace", time.Hour, "keep unused blobs younger than this (a build or pull running now may be about to use them)")
	asJSON := fs.Bool("json", false, "print what was removed as JSON")
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("%w: image prune takes no arguments", errUsage)
	}
	store, err := openStoreToRead(*dir)
	if err != nil {
		return err
	}
	p, err := store.Prune(*grace, time.Now())
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(stdout, p)
	}
	for _, e := range p.Entries {
		fmt.Fprintf(stdout, "dropped stale %s\n", resolve.ShortName(e))
	}
	fmt.Fprintf(stdout, "deleted %d unused files, %s\n", p.Files, humanize.IBytes(uint64(p.Bytes)))
	return nil
}

func runImageSave(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("image save", "-o FILE [--store DIR] NAME...", stderr)
	dir := storeFlag(fs)
	out := fs.String("o", "", "the tar `FILE` to write")
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	if *out == "" || fs.NArg() == 0 {
		return fmt.Errorf("%w: need -o FILE and at least one image", errUsage)
	}
	store, err := openStoreToRead(*dir)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(*out), "."+filepath.Base(*out)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // a no-op after the rename
	if err := store.Save(f, fs.Args()...); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), *out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s\n", *out)
	return nil
}

func runImageLoad(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("image load", "[--store DIR] FILE", stderr)
	dir := storeFlag(fs)
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: image load takes one tar file", errUsage)
	}
	d, err := storeDir(*dir)
	if err != nil {
		return err
	}
	store, err := resolve.OpenStore(d)
	if err != nil {
		return err
	}
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		return err
	}
	defer f.Close()
	names, err := store.Load(f)
	if err != nil {
		return fmt.Errorf("%s: %w", fs.Arg(0), err)
	}
	for _, n := range names {
		fmt.Fprintf(stdout, "loaded %s\n", resolve.ShortName(n))
	}
	return nil
}

func runImagePush(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("image push", "[--store DIR] NAME [REF]", stderr)
	dir := storeFlag(fs)
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	if fs.NArg() < 1 || fs.NArg() > 2 {
		return fmt.Errorf("%w: image push takes a stored NAME and, optionally, the REF to push it to", errUsage)
	}
	store, err := openStoreToRead(*dir)
	if err != nil {
		return err
	}
	to := fs.Arg(0)
	if fs.NArg() == 2 {
		to = fs.Arg(1)
	}
	d, err := store.Push(ctx, fs.Arg(0), to, authn.DefaultKeychain)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "pushed %s %s\n", to, d)
	return nil
}

func runImagePull(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("image pull", "[--arch amd64] [--store DIR] REF...", stderr)
	dir := storeFlag(fs)
	arch := fs.String("arch", "amd64", "the platform's architecture (os linux) to pull from a multi-platform image")
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return fmt.Errorf("%w: name the images to pull", errUsage)
	}
	d, err := storeDir(*dir)
	if err != nil {
		return err
	}
	store, err := resolve.OpenStore(d)
	if err != nil {
		return err
	}
	platform, err := parseLinuxPlatform(*arch)
	if err != nil {
		return err
	}
	r, err := resolve.NewResolver(resolve.WithStore(store), resolve.WithPlatform(platform))
	if err != nil {
		return err
	}
	for _, ref := range fs.Args() {
		img, err := r.Resolve(ctx, ref)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "pulled %s %s\n", ref, img.Digest)
	}
	return nil
}

// parseLinuxPlatform reads --arch: amd64, arm64, arm64/v8 (os linux).
func parseLinuxPlatform(arch string) (v1.Platform, error) {
	p, err := v1.ParsePlatform("linux/" + arch)
	if err != nil {
		return v1.Platform{}, fmt.Errorf("%w: --arch %q: %v", errUsage, arch, err)
	}
	return *p, nil
}
