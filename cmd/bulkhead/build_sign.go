package main

import (
	"context"
	"fmt"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/bulkhead-dev/bulkhead/builder/config"
	"github.com/bulkhead-dev/bulkhead/builder/resolve"
	"github.com/bulkhead-dev/bulkhead/builder/sign"
	"github.com/bulkhead-dev/bulkhead/builder/trust"
)

// signBuild signs a finished build's outputs in outDir with key: SHA256SUMS,
// a Sigstore bundle per output, and the SLSA provenance naming the specs,
// their lock file, every resolved image and bulkhead's version. Load the
// key with loadSignKey before building, so a bad key fails before anything
// is written.
func signBuild(ctx context.Context, key *sign.PrivateKey, outDir string, specs []string, sum *buildSummary, platform v1.Platform) error {
	var files []string
	digests := map[string]string{} // hashed as written: not read again
	for _, o := range sum.Outputs {
		if filepath.Clean(filepath.Dir(o.Path)) != filepath.Clean(outDir) {
			return fmt.Errorf("signing outputs: %s is not in %s", o.Path, outDir)
		}
		files = append(files, filepath.Base(o.Path))
		digests[filepath.Base(o.Path)] = o.Digest
	}
	var images []sign.Material
	for _, img := range sum.Images {
		h, err := v1.NewHash(img.Digest)
		if err != nil {
			return fmt.Errorf("signing outputs: image %s: %w", img.Ref, err)
		}
		images = append(images, sign.Material{Name: img.Ref, URI: img.Name, Digest: h})
	}
	info, err := buildInfo(specs, images, platform)
	if err != nil {
		return err
	}
	return sign.SignArtifacts(ctx, outDir, files, key, info, sign.WithDigests(digests))
}

// checkTrust checks the resolved images (imgs[i] for refs[i]) against the
// spec's trust policy and returns the key that verified each one ("" where
// the policy asks for none). requirePinned turns on the digest requirement
// (--locked and release builds). The error lists every failure, one per
// line, each as "host.yml:8:12: image "x": signature: ...".
//
// build calls it right after resolving, before anything is assembled or
// written; lock calls it after resolving and records the keys with
// pinKeys.
func checkTrust(ctx context.Context, spec *config.Spec, refs []specRef, imgs []*resolve.Image, lock *resolve.Lock,
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
		crefs[i] = config.Ref{Ref: r.ref, Pos: r.pos}
	}
	return trust.CheckAll(ctx, policy, crefs, imgs, lock, platform, trust.DefaultSources(store, offline))
}

// pinKeys records in the lock the key that verified each image.
func pinKeys(lock *resolve.Lock, refs []specRef, ids []trust.KeyID, platform v1.Platform) {
	for i, r := range refs {
		if e, ok := lock.Find(r.ref, platform); ok && ids[i] != "" {
			e.Key = ids[i]
			lock.Set(e)
		}
	}
}
