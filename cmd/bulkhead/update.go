package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/bulkhead-dev/bulkhead/internal/update"
)

const updateUsage = `Usage:
  bulkhead build --format update --sign-key KEY [flags] SPEC...   write NAME.bundle
  bulkhead update inspect [--json] NAME.bundle                      show what a bundle claims (signature not checked)
  bulkhead update verify --key PUB NAME.bundle                      check its signature, every payload, its expiry
  bulkhead update push [--from OLD.bundle] NAME.bundle REF          publish it to an OCI registry, chunked (a host fetches what it lacks;
                                                                    with --from, hosts on OLD fetch deltas of changed chunks)
  bulkhead update plan --from OLD.bundle|REF NEW.bundle|REF         bytes a host on OLD fetches for NEW, by component

A bundle needs boot.version in the spec and an expiry (update.expires, or
build --expires); update.keys names the keys the built host will accept.
`

func updateCommand() command {
	return command{
		name:    "update",
		subs:    []string{"inspect", "verify", "push", "plan"},
		summary: "read update bundles (update inspect, update verify), publish them (update push, update plan); build --format update writes them",
		run: func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
			if len(args) == 0 {
				fmt.Fprint(stderr, updateUsage)
				return fmt.Errorf("%w: missing subcommand", errUsage)
			}
			switch args[0] {
			case "inspect":
				return runUpdateInspect(args[1:], stdout, stderr)
			case "verify":
				return runUpdateVerify(args[1:], stdout, stderr)
			case "push":
				return runUpdatePush(ctx, args[1:], stdout, stderr)
			case "plan":
				return runUpdatePlan(ctx, args[1:], stdout, stderr)
			case "-h", "--help", "help":
				fmt.Fprint(stdout, updateUsage)
				return nil
			}
			return fmt.Errorf("%w: unknown subcommand %q (want inspect, verify, push or plan)", errUsage, args[0])
		},
	}
}

// bundleInfo is update inspect's --json document.
type bundleInfo struct {
	Path       string           `json:"path"`
	Size       int64            `json:"size"`
	RootHash   string           `json:"root_hash"`
	SignedBy   []string         `json:"signed_by"`
	Manifest   *update.Manifest `json:"manifest"`
	Unverified bool             `json:"unverified"`
}

func runUpdateInspect(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("update inspect", "[--json] NAME.bundle", stderr)
	asJSON := fs.Bool("json", false, "print the manifest and signers as JSON")
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return fmt.Errorf("%w: want one bundle", errUsage)
	}
	info, err := inspectBundle(fs.Arg(0))
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(info)
	}
	printBundle(stdout, info)
	return nil
}

func inspectBundle(path string) (*bundleInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("inspecting bundle: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("inspecting bundle: %w", err)
	}
	m, env, err := update.Inspect(f)
	if err != nil {
		return nil, fmt.Errorf("inspecting %s: %w", path, err)
	}
	info := &bundleInfo{Path: path, Size: st.Size(), RootHash: m.RootHash(), Manifest: m, Unverified: true}
	for _, s := range env.Signatures {
		info.SignedBy = append(info.SignedBy, s.KeyID)
	}
	return info, nil
}

func printBundle(w io.Writer, b *bundleInfo) {
	m := b.Manifest
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "bundle\t%s (%d bytes)\n", b.Path, b.Size)
	fmt.Fprintf(tw, "host\t%s\nversion\t%s\narch\t%s\n", m.Host, m.Version, m.Arch)
	fmt.Fprintf(tw, "from\t%s\n", orText(m.From, "any version"))
	fmt.Fprintf(tw, "downgrade\t%s\n", orText(strings.Join(m.Downgrade, " "), "none"))
	fmt.Fprintf(tw, "created\t%s\nexpires\t%s\n", m.Created.Format(time.RFC3339), m.Expires.Format(time.RFC3339))
	fmt.Fprintf(tw, "root hash\t%s\nverity\t%s\ntries\t%d\noptions\t%s\n", b.RootHash, m.Verity, m.Tries, m.Options)
	fmt.Fprintf(tw, "signed by\t%s (not checked: bulkhead update verify --key PUB)\n", strings.Join(b.SignedBy, " "))
	for _, p := range m.Payloads {
		fmt.Fprintf(tw, "payload %s\t%d bytes, sha256:%s; stored %d bytes %s\n", p.Name, p.Size, p.SHA256, p.StoredSize, orText(p.Encoding, "as is"))
	}
	tw.Flush()
}

func orText(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}

func runUpdateVerify(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("update verify", "--key PUB NAME.bundle", stderr)
	keyPath := fs.String("key", "", "public key(s) (PEM; a file may hold several) one of which must have signed the bundle")
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	if *keyPath == "" || fs.NArg() != 1 {
		fs.Usage()
		return fmt.Errorf("%w: need --key and one bundle", errUsage)
	}
	b, err := os.ReadFile(*keyPath)
	if err != nil {
		return fmt.Errorf("reading public key: %w", err)
	}
	keys, err := update.ParsePublicKeys(b)
	if err != nil {
		return fmt.Errorf("%s: %w", *keyPath, err)
	}
	m, keyID, err := verifyBundle(fs.Arg(0), keys, time.Now())
	if err != nil {
		fmt.Fprintf(stdout, "FAIL  %s: %v\n", fs.Arg(0), err)
		return exitError{1}
	}
	fmt.Fprintf(stdout, "ok    %s %s %s, root hash %s, signed by %s, expires %s\n",
		fs.Arg(0), m.Host, m.Version, m.RootHash(), keyID, m.Expires.Format(time.RFC3339))
	return nil
}

// verifyBundle checks the signature, decodes every payload against its
// digests, and refuses a bundle expired at now.
func verifyBundle(path string, keys []*update.PublicKey, now time.Time) (*update.Manifest, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, "", err
	}
	defer f.Close()
	r, err := update.NewReader(f, keys)
	if err != nil {
		return nil, "", err
	}
	for {
		_, pr, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, "", err
		}
		if _, err := io.Copy(io.Discard, pr); err != nil {
			return nil, "", err
		}
	}
	m := r.Manifest()
	if !now.Before(m.Expires) {
		return nil, "", fmt.Errorf("expired at %s", m.Expires.Format(time.RFC3339))
	}
	return m, r.KeyID(), nil
}
