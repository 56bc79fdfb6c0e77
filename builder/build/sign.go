package build

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/bulkhead-dev/bulkhead/builder/resolve"
	"github.com/bulkhead-dev/bulkhead/builder/sign"
)

// Sign signs a finished build's outputs in outDir with key: SHA256SUMS, a
// Sigstore bundle per output, and the SLSA provenance naming the specs,
// their lock file, every resolved image and the builder's version.
func Sign(ctx context.Context, key *sign.PrivateKey, outDir string, specs []string, r *Result, platform v1.Platform, version string) error {
	var files []string
	for _, o := range r.Outputs {
		if filepath.Clean(filepath.Dir(o.Path)) != filepath.Clean(outDir) {
			return fmt.Errorf("signing outputs: %s is not in %s", o.Path, outDir)
		}
		files = append(files, filepath.Base(o.Path))
	}
	var images []sign.Material
	for _, img := range r.Images {
		h, err := v1.NewHash(img.Digest)
		if err != nil {
			return fmt.Errorf("signing outputs: image %s: %w", img.Ref, err)
		}
		images = append(images, sign.Material{Name: img.Ref, URI: img.Name, Digest: h})
	}
	info, err := BuildInfo(specs, images, platform, version)
	if err != nil {
		return err
	}
	return sign.SignArtifacts(ctx, outDir, files, key, info)
}

// BuildInfo describes a build for its provenance: the spec files, their
// lock file when there is one, the images, the platform and the builder's
// version.
func BuildInfo(specs []string, images []sign.Material, platform v1.Platform, version string) (sign.BuildInfo, error) {
	info := sign.BuildInfo{
		Images:         images,
		Parameters:     map[string]string{"platform": platform.String()},
		BuilderVersion: version,
	}
	for _, s := range specs {
		m, err := sign.FileMaterial(s)
		if err != nil {
			return info, fmt.Errorf("describing the build: %w", err)
		}
		info.Specs = append(info.Specs, m)
	}
	if len(specs) > 0 {
		lockPath := resolve.LockPath(specs[0])
		m, err := sign.FileMaterial(lockPath)
		switch {
		case err == nil:
			info.Lock = &m
		case !errors.Is(err, fs.ErrNotExist):
			return info, fmt.Errorf("describing the build: %w", err)
		}
	}
	return info, nil
}
