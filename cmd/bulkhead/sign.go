package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/bulkhead-dev/bulkhead/builder/build"
	"github.com/bulkhead-dev/bulkhead/builder/resolve"
	"github.com/bulkhead-dev/bulkhead/builder/sign"
)

// signKeyEnv is the environment variable a signing key is read from when no
// --key/--sign-key is given.
const signKeyEnv = "BULKHEAD_SIGN_KEY"

func signCommand() command {
	return command{
		name:    "sign",
		summary: "sign existing outputs: SHA256SUMS, Sigstore bundles, SLSA provenance",
		run:     runSign,
	}
}

// specList is a repeatable --spec flag.
type specList []string

func (s *specList) String() string     { return strings.Join(*s, ",") }
func (s *specList) Set(v string) error { *s = append(*s, v); return nil }

func runSign(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("sign", "--key KEY [--spec SPEC]... [--arch amd64] DIR [ARTIFACT...]", stderr)
	keyRef := fs.String("key", "", "private key: a PEM file, or env://NAME (default env://"+signKeyEnv+" when set)")
	arch := fs.String("arch", "amd64", "architecture whose lock file pins the provenance names")
	var specs specList
	fs.Var(&specs, "spec", "spec file the outputs were built from (repeat, in merge order); its lock file names the inputs")
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	if fs.NArg() < 1 {
		fs.Usage()
		return fmt.Errorf("%w: no output directory given", errUsage)
	}
	key, err := loadSignKey(*keyRef)
	if err != nil {
		return err
	}
	dir := fs.Arg(0)
	files := fs.Args()[1:]
	if len(files) == 0 {
		if files, err = listArtifacts(dir); err != nil {
			return err
		}
	}
	platform, err := v1.ParsePlatform("linux/" + *arch)
	if err != nil {
		return fmt.Errorf("%w: --arch %q: %v", errUsage, *arch, err)
	}
	images, err := lockMaterials(specs, *platform)
	if err != nil {
		return err
	}
	info, err := build.BuildInfo(specs, images, *platform, bulkheadVersion())
	if err != nil {
		return err
	}
	if err := sign.SignArtifacts(ctx, dir, files, key, info); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "signed %d artifacts in %s with key %s\n", len(files), dir, key.Public().ID())
	return nil
}

// loadSignKey reads the signing key named by ref (a path or env://NAME), or
// by $BULKHEAD_SIGN_KEY when ref is empty.
func loadSignKey(ref string) (*sign.PrivateKey, error) {
	if ref == "" {
		if os.Getenv(signKeyEnv) == "" {
			return nil, fmt.Errorf("%w: no signing key: give --key or set %s", errUsage, signKeyEnv)
		}
		ref = sign.EnvPrefix + signKeyEnv
	}
	return sign.LoadPrivateKey(ref)
}

// listArtifacts lists the regular files of dir that are not signatures.
func listArtifacts(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		n := e.Name()
		if !e.Type().IsRegular() || strings.HasPrefix(n, ".") || n == sign.SumsFile ||
			n == sign.ProvenanceFile || strings.HasSuffix(n, sign.BundleSuffix) {
			continue
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s holds no artifacts to sign", dir)
	}
	return out, nil
}

// lockMaterials names the images the first spec's lock file pins for
// platform.
func lockMaterials(specs []string, platform v1.Platform) ([]sign.Material, error) {
	if len(specs) == 0 {
		return nil, nil
	}
	lock, err := resolve.LoadLock(resolve.LockPath(specs[0]))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []sign.Material
	for _, e := range lock.Images {
		if e.Platform == platform.String() {
			out = append(out, sign.Material{Name: e.Ref, URI: e.Name, Digest: e.Digest})
		}
	}
	return out, nil
}
