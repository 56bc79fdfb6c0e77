package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/dustin/go-humanize"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/bulkhead-dev/bulkhead/builder/publish"
	"github.com/bulkhead-dev/bulkhead/internal/update/chunk"
)

// registryOptions are the CLI's registry options: the Docker config
// file's credentials and helpers.
func registryOptions(ctx context.Context) []remote.Option {
	return []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain), remote.WithUserAgent("bulkhead")}
}

// runUpdatePush publishes a bundle to a registry (update push).
func runUpdatePush(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("update push", "[--from OLD.bundle] NAME.bundle REF", stderr)
	asJSON := fs.Bool("json", false, "print what was pushed as JSON")
	from := fs.String("from", "", "also store deltas of the new root chunks against the root of `OLD.bundle` (hosts running it fetch those instead)")
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		fs.Usage()
		return fmt.Errorf("%w: want a bundle and a reference", errUsage)
	}
	ref, err := name.ParseReference(fs.Arg(1), name.Insecure)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	dir, err := os.MkdirTemp("", "bulkhead-push-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	a, err := publish.Chunk(ctx, fs.Arg(0), dir, chunk.Default)
	if err != nil {
		return err
	}
	if *from != "" {
		if err := publish.AddDeltas(ctx, a, *from, dir); err != nil {
			return err
		}
	}
	p, err := publish.Push(ctx, a, ref, registryOptions(ctx)...)
	if err != nil {
		return err
	}
	size, _ := a.Size()
	out := map[string]any{"ref": ref.String(), "digest": p.Digest.String(), "signature": p.Signature.String(),
		"chunks": len(a.Index.Refs()), "packs": len(a.Packs), "bytes": size, "deltas": a.Deltas()}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(out)
	}
	fmt.Fprintf(stdout, "pushed %s@%s\n  %d chunks in %d packs, %s in all\n  signature %s\n",
		ref.Context(), p.Digest, out["chunks"], len(a.Packs), humanize.Bytes(uint64(size)), p.Signature)
	if n := a.Deltas(); n > 0 {
		fmt.Fprintf(stdout, "  %d deltas against %s\n", n, *from)
	}
	return nil
}

// runUpdatePlan prints what a host on one version fetches for another.
func runUpdatePlan(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("update plan", "--from OLD.bundle|REF NEW.bundle|REF", stderr)
	from := fs.String("from", "", "the version the host runs: a bundle or a reference")
	asJSON := fs.Bool("json", false, "print the plan as JSON")
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 || *from == "" {
		fs.Usage()
		return fmt.Errorf("%w: want --from and one update", errUsage)
	}
	dir, err := os.MkdirTemp("", "bulkhead-plan-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	old, err := publish.Load(ctx, *from, dir, registryOptions(ctx)...)
	if err != nil {
		return err
	}
	cur, err := publish.Load(ctx, fs.Arg(0), dir, registryOptions(ctx)...)
	if err != nil {
		return err
	}
	p := publish.MakePlan(old, cur)
	if *asJSON {
		return json.NewEncoder(stdout).Encode(p)
	}
	printPlan(stdout, p)
	return nil
}

func printPlan(w io.Writer, p publish.Plan) {
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "component\tchunks\tstored\tfetch chunks\tfetch bytes\t")
	for _, c := range p.Components {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s\t\n", c.Name, c.Chunks, humanize.Bytes(uint64(c.Stored)), c.Fetch, humanize.Bytes(uint64(c.FetchBytes)))
	}
	fmt.Fprintf(tw, "manifest, signature, index\t\t\t\t%s\t\n", humanize.Bytes(uint64(p.Meta)))
	tw.Flush()
	fmt.Fprintf(w, "fetch %s of %s (%.2f%%)\n", humanize.Bytes(uint64(p.Fetch)), humanize.Bytes(uint64(p.Whole)), 100*float64(p.Fetch)/float64(max(p.Whole, 1)))
}
