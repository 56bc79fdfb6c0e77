package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/bulkhead-dev/bulkhead/builder/build"
	"github.com/bulkhead-dev/bulkhead/builder/scan"
	"github.com/bulkhead-dev/bulkhead/internal/regfile"
)

func scanCommand() command {
	return command{
		name:    "scan",
		summary: "run the SBOM, vulnerability, secrets and minimality gates on a spec or an artifact",
		run:     runScan,
	}
}

type scanFlags struct {
	build           buildFlags
	vulndb, policy  string
	asJSON          bool
	html            string
	maxDecompressed sizeValue
	maxRatio        int64
}

func runScan(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("scan", "[flags] SPEC...|ARTIFACT", stderr)
	var f scanFlags
	fs.StringVar(&f.build.out, "o", "", "write NAME-sbom.spdx.json, NAME-sbom.cdx.json, NAME-scan.json and NAME-scan.txt into this directory")
	fs.StringVar(&f.build.name, "name", "", "name of the host in the SBOM (default: the file name without extension)")
	fs.StringVar(&f.vulndb, "vulndb", "", "OSV database: a directory or zip of OSV JSON records (default: no vulnerability gate)")
	fs.StringVar(&f.policy, "spec", "", "spec whose policy applies when scanning an artifact")
	fs.StringVar(&f.build.arch, "arch", "amd64", "architecture to resolve images for (spec only)")
	fs.StringVar(&f.build.store, "store", "", "image store directory (spec only; default $BULKHEAD_STORE, else $XDG_CACHE_HOME/bulkhead/store)")
	fs.BoolVar(&f.build.locked, "locked", false, "refuse any image reference the lock file does not pin (spec only)")
	fs.BoolVar(&f.build.offline, "offline", false, "never contact a registry; use the local store only (spec only)")
	fs.BoolVar(&f.asJSON, "json", false, "print the JSON report (NAME-scan.json) instead of the summary")
	fs.StringVar(&f.html, "html", "", "also write the report as one self-contained HTML `FILE`: a size treemap by component and file, the packages, the gates")
	addSpecLimitFlags(fs, &f.build.limits)
	f.maxDecompressed = scan.DefaultMaxDecompressed
	fs.Var(&f.maxDecompressed, "max-decompressed", "largest an artifact's initrd may be once decompressed, a `SIZE` such as 4G (artifact only)")
	fs.Int64Var(&f.maxRatio, "max-ratio", scan.DefaultMaxRatio, fmt.Sprintf("largest compression ratio of an artifact's initrd beyond the first %s (artifact only)", regfile.Size(scan.RatioFloor)))
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	paths := fs.Args()
	if len(paths) == 0 {
		fs.Usage()
		return fmt.Errorf("%w: no spec or artifact given", errUsage)
	}
	if f.build.name == "" {
		base := filepath.Base(paths[0])
		f.build.name = strings.TrimSuffix(base, filepath.Ext(base))
	}
	epoch, err := sourceDateEpoch()
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	in := scan.Input{Name: f.build.name, VulnDB: f.vulndb, Now: time.Now().UTC(), Epoch: epoch}
	if isSpec(paths[0]) {
		err = scanInputFromSpec(ctx, &in, paths, f.build, epoch, stderr)
	} else {
		err = scanInputFromArtifact(&in, paths, f, scan.WithMaxDecompressed(int64(f.maxDecompressed)), scan.WithMaxRatio(f.maxRatio))
	}
	if err != nil {
		return err
	}
	r, err := scan.Run(ctx, in)
	if err != nil {
		return err
	}
	return reportScan(r, f, stdout)
}

// reportScan writes the report files, prints the summary or JSON, and
// turns a failed gate into exit status 1.
func reportScan(r *scan.Report, f scanFlags, stdout io.Writer) error {
	if f.build.out != "" {
		if err := os.MkdirAll(f.build.out, 0o755); err != nil {
			return err
		}
		if _, err := r.WriteFiles(f.build.out); err != nil {
			return err
		}
	}
	if f.html != "" {
		if err := writeHTMLReport(f.html, r); err != nil {
			return err
		}
	}
	if f.asJSON {
		js, err := r.JSON()
		if err != nil {
			return err
		}
		if _, err := stdout.Write(js); err != nil {
			return err
		}
	} else {
		r.Summary(stdout)
	}
	if len(r.Failed()) > 0 {
		return exitError{1}
	}
	return nil
}

func isSpec(p string) bool {
	ext := strings.ToLower(filepath.Ext(p))
	return ext == ".yml" || ext == ".yaml"
}

// scanInputFromSpec resolves and assembles the spec as build does.
func scanInputFromSpec(ctx context.Context, in *scan.Input, specs []string, f buildFlags, epoch int64, stderr io.Writer) error {
	platform, err := v1.ParsePlatform("linux/" + f.arch)
	if err != nil {
		return fmt.Errorf("%w: --arch %q: %v", errUsage, f.arch, err)
	}
	b, err := build.New(specs, build.WithName(f.name), build.WithPlatform(*platform), build.WithStore(f.store),
		build.WithLocked(f.locked), build.WithOffline(f.offline), build.WithSpecOptions(f.limits.options()...), build.WithEpoch(epoch))
	if err != nil {
		return err
	}
	l, err := b.Load()
	if err != nil {
		return err
	}
	res, err := b.ResolveSpec(ctx, l)
	if err != nil {
		return explain(err, stderr)
	}
	host, err := b.Assemble(ctx, l, res)
	if err != nil {
		return err // rootfs names the step: "assembling root: …"
	}
	spec := l.Spec
	in.Tree, in.Cmdline, in.Policy, in.Outside = host.Tree, host.Cmdline, spec.Policy, host.Outside
	in.Spec, in.SpecName = l.Text, filepath.Base(specs[0])
	in.Images = build.SortedImages(res.Images)
	if in.Cache, err = b.ScanCache(); err != nil {
		return err
	}
	if spec.Kernel.Image != "" {
		if in.Kernel, err = scan.KernelInfo(host.Kernel, res.Images[spec.Kernel.Image]); err != nil {
			return err
		}
	}
	return nil
}

// scanInputFromArtifact reads a tar, an initrd, a raw-efi disk or an iso-efi
// image (scan.ReadArtifact); the policy comes from
// policySpec when given.
func scanInputFromArtifact(in *scan.Input, paths []string, f scanFlags, opts ...scan.ReadOption) error {
	policySpec, limits := f.policy, f.build.limits
	if len(paths) != 1 {
		return fmt.Errorf("%w: scan takes one artifact", errUsage)
	}
	a, err := scan.ReadBootArtifact(paths[0], opts...)
	if errors.Is(err, scan.ErrUnsupported) {
		return fmt.Errorf("%w (scan its spec, or a tar, kernel+initrd, raw-efi or iso-efi build)", err)
	}
	if err != nil {
		return err
	}
	in.Tree, in.Kernel, in.Cmdline = a.Tree, a.Kernel, a.Cmdline
	if policySpec != "" {
		spec, text, err := loadSpecs([]string{policySpec}, limits)
		if err != nil {
			return err
		}
		in.Policy, in.Spec, in.SpecName = spec.Policy, text, filepath.Base(policySpec)
		if in.Cmdline == "" {
			in.Cmdline = spec.Kernel.Cmdline
		}
	}
	return nil
}
