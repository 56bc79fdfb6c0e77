// Package scan runs the gates a host must pass before it ships: it lists
// what the host holds (an SBOM of the kernel, images, Go modules and
// toolchains, Debian and Alpine packages), matches it against an offline
// vulnerability database, looks for secrets in every file, image config,
// the spec and the kernel command line, and reports how minimal the host
// is. Policy decides what fails; Report.Failed says why.
package scan

import (
	"context"
	"fmt"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/bulkhead-dev/bulkhead/builder/config"
	"github.com/bulkhead-dev/bulkhead/builder/resolve"
	"github.com/bulkhead-dev/bulkhead/builder/rootfs"
	"github.com/bulkhead-dev/bulkhead/builder/scan/minimal"
	"github.com/bulkhead-dev/bulkhead/builder/scan/sbom"
	"github.com/bulkhead-dev/bulkhead/builder/scan/secrets"
	"github.com/bulkhead-dev/bulkhead/builder/scan/vuln"
)

// Input is what Run scans.
type Input struct {
	// Name names the host in the SBOM (the spec's base name).
	Name string
	// Tree is the host's root.
	Tree *rootfs.Tree
	// Images are the resolved images the host was built from; nil when
	// scanning an artifact.
	Images []*resolve.Image
	// Kernel describes the kernel, or nil (see KernelInfo).
	Kernel *Kernel
	// Cmdline is the kernel command line.
	Cmdline string
	// Spec is the spec's text and SpecName its file name, for the secrets
	// gate; both may be empty.
	Spec     []byte
	SpecName string
	// Policy is the spec's policy section, or nil for the defaults.
	Policy *config.Policy
	// Outside are the files entries read from outside the spec's
	// directory (rootfs.Host.Outside): listed in the report, and a
	// violation under policy.forbid: outside-files.
	Outside []rootfs.OutsideFile
	// VulnDB is a directory or zip of OSV records; "" skips the
	// vulnerability gate (which then fails if the policy asks for it).
	VulnDB string
	// Now decides which allowances have expired. Reports do not hold it.
	Now time.Time
	// Epoch is SOURCE_DATE_EPOCH, the SBOMs' creation time.
	Epoch int64
	// Workers is how many files are read at once (default 2).
	Workers int
	// Cache keeps what was found in the files of Images' layers, for the
	// next scan of the same layers; nil reads every file.
	Cache *Cache
}

// Kernel is what the SBOM says about the kernel.
type Kernel struct {
	// Ref and Digest name the kernel image, when there is one.
	Ref    string
	Digest string
	// Version is the kernel release ("6.1.0-28-cloud-amd64").
	Version string
	// ConfigDigest is the sha256 of the kernel's .config, "" if unknown.
	ConfigDigest string
}

// Secret is a secrets finding with the policy's verdict.
type Secret struct {
	secrets.Finding
	// Status is "fail", "allowed" or "expired" (fails).
	Status  string `json:"status"`
	Reason  string `json:"reason,omitempty"`
	Expires string `json:"expires,omitempty"`
}

// Report is the result of the gates.
type Report struct {
	Name     string         `json:"name"`
	Packages []sbom.Package `json:"packages"`
	// VulnDB says whether a vulnerability database was consulted.
	VulnDB          bool            `json:"vulndb"`
	Vulnerabilities []vuln.Finding  `json:"vulnerabilities"`
	Secrets         []Secret        `json:"secrets"`
	Minimality      *minimal.Report `json:"minimality"`
	// OutsideFiles are the files entries read from outside the spec's
	// directory.
	OutsideFiles []rootfs.OutsideFile `json:"outside_files"`
	// Violations are the policy's size and forbid rules broken.
	Violations []string `json:"violations"`

	// SPDX and CycloneDX are the SBOM documents.
	SPDX      []byte `json:"-"`
	CycloneDX []byte `json:"-"`

	vulnRequired bool
}

// Run scans in and applies its policy. An error means the scan could not
// be done; a host that fails the gates gives a Report whose Failed is
// not empty.
func Run(ctx context.Context, in Input) (*Report, error) {
	if in.Tree == nil {
		return nil, fmt.Errorf("scanning: no root tree")
	}
	// The secrets gate's rule set is dropped once the scan is done.
	defer secrets.Hold()()
	forbid, maxSize, err := parsePolicy(in.Policy)
	if err != nil {
		return nil, fmt.Errorf("scanning: %w", err)
	}
	files, err := readTree(ctx, in.Tree, in.Images, in.Cache, in.Workers)
	if err != nil {
		return nil, fmt.Errorf("scanning: %w", err)
	}
	r := &Report{Name: in.Name, OutsideFiles: append([]rootfs.OutsideFile{}, in.Outside...)}
	if r.Packages, err = inventory(in, files); err != nil {
		return nil, fmt.Errorf("scanning: %w", err)
	}
	if err := r.sbom(in); err != nil {
		return nil, fmt.Errorf("scanning: writing sbom: %w", err)
	}
	if err := r.vulnerabilities(ctx, in); err != nil {
		return nil, fmt.Errorf("scanning: %w", err)
	}
	if err := r.secrets(in, files); err != nil {
		return nil, fmt.Errorf("scanning: %w", err)
	}
	if len(in.Images) == 0 {
		attributeRoots(files.entries, r.Packages)
	}
	r.Minimality = minimal.Analyze(files.entries, entrypoints(in.Tree))
	r.Violations = violations(r, forbid, maxSize, in.Policy)
	return r, nil
}

func (r *Report) sbom(in Input) error {
	doc := &sbom.Document{
		Name:     in.Name,
		Created:  time.Unix(in.Epoch, 0).UTC().Format(time.RFC3339),
		Packages: r.Packages,
	}
	var err error
	if r.SPDX, err = sbom.SPDX(doc); err != nil {
		return err
	}
	r.CycloneDX, err = sbom.CycloneDX(doc)
	return err
}

func (r *Report) vulnerabilities(ctx context.Context, in Input) error {
	r.Vulnerabilities = []vuln.Finding{}
	if in.Policy != nil && in.Policy.Vulnerabilities != nil {
		r.vulnRequired = true
	}
	if in.VulnDB == "" {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	db, err := vuln.Load(in.VulnDB, vuln.Wants(r.Packages))
	if err != nil {
		return err
	}
	r.VulnDB = true
	r.Vulnerabilities = db.Match(r.Packages)
	var p *config.VulnerabilityPolicy
	if in.Policy != nil {
		p = in.Policy.Vulnerabilities
	}
	return vuln.Apply(r.Vulnerabilities, p, in.Now)
}

// imageName is how reports name an image: its reference and digest.
func imageName(img *resolve.Image) string { return img.Ref + "@" + img.Digest.String() }

// layerOrigins maps each layer file in the store to "REF@DIGEST#layer
// DIFFID", so every file's origin names its layer.
func layerOrigins(images []*resolve.Image) map[string]string {
	m := map[string]string{}
	for _, img := range images {
		for _, l := range img.Layers {
			if _, ok := m[l.Path]; !ok {
				m[l.Path] = "#layer " + l.DiffID.String()
			}
		}
	}
	return m
}

// layerDiffIDs maps each layer file in the store to its diff ID: the
// files resolution verified, whose content that digest names.
func layerDiffIDs(images []*resolve.Image) map[string]string {
	m := map[string]string{}
	for _, img := range images {
		for _, l := range img.Layers {
			m[l.Path] = l.DiffID.String()
		}
	}
	return m
}

// imageConfig is the part of an image config the secrets gate reads.
func imageConfig(img *resolve.Image) *v1.ConfigFile {
	if img.Config == nil {
		return &v1.ConfigFile{}
	}
	return img.Config
}
