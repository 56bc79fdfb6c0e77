package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/bulkhead-dev/bulkhead/builder/config"
	"github.com/bulkhead-dev/bulkhead/builder/kernelcheck"
	"github.com/bulkhead-dev/bulkhead/builder/output"
	"github.com/bulkhead-dev/bulkhead/builder/resolve"
	"github.com/bulkhead-dev/bulkhead/builder/rootfs"
	"github.com/bulkhead-dev/bulkhead/builder/scan"
)

// kernelReportName is the kernel check's report beside the outputs.
const kernelReportName = "kernel-check.txt"

// gateResults are the build's checks, written beside the outputs once
// every output is written.
type gateResults struct {
	scan   *scan.Report
	kernel []byte // the kernel check's report, nil without a kernel
}

// runGates checks the kernel against policy.kernel (the default policy,
// report only, when the spec has none) and runs the scan gates on the
// host, embedding the SBOM into its root. A gate the policy enforces
// fails the build before anything is written; an unenforced kernel
// failure is a warning on stderr.
func runGates(ctx context.Context, spec *config.Spec, text []byte, specPath string, host *rootfs.Host, images map[string]*resolve.Image, f buildFlags, epoch int64, stderr io.Writer) (*gateResults, error) {
	g := &gateResults{}
	if err := g.checkKernel(spec, host, images, stderr); err != nil {
		return nil, err
	}
	in := scan.Input{
		Name: f.name, Tree: host.Tree, Images: sortedImages(images), Cmdline: host.Cmdline,
		Spec: text, SpecName: filepath.Base(specPath), Policy: spec.Policy, Outside: host.Outside,
		VulnDB: f.vulndb, Now: time.Now().UTC(), Epoch: epoch,
	}
	if spec.Kernel.Image != "" {
		k, err := scan.KernelInfo(host.Kernel, images[spec.Kernel.Image])
		if err != nil {
			return nil, err
		}
		in.Kernel = k
	}
	r, err := scan.Run(ctx, in)
	if err != nil {
		return nil, err
	}
	if failed := r.Failed(); len(failed) > 0 {
		r.Summary(stderr)
		return nil, fmt.Errorf("the host fails its policy (%d gate failures, listed above); nothing was written", len(failed))
	}
	r.Embed(host.Tree, epoch)
	g.scan = r
	return g, nil
}

func (g *gateResults) checkKernel(spec *config.Spec, host *rootfs.Host, images map[string]*resolve.Image, stderr io.Writer) error {
	if spec.Kernel.Image == "" {
		return nil
	}
	cfg, _, err := kernelcheck.ImageConfig(images[spec.Kernel.Image], spec.Kernel.Binary)
	if err != nil {
		fmt.Fprintf(stderr, "bulkhead build: warning: kernel check skipped: %v\n", err)
		return nil
	}
	policy := defaultKernelPolicy
	if spec.Policy != nil && spec.Policy.Kernel != nil {
		policy = *spec.Policy.Kernel
	}
	rep, v, err := kernelcheck.CheckHost(cfg, host.Cmdline, &policy)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := writeKernelReport(&buf, rep, v); err != nil {
		return err
	}
	g.kernel = buf.Bytes()
	if v.Pass {
		return nil
	}
	if v.Enforce {
		fmt.Fprint(stderr, buf.String())
		return fmt.Errorf("%s: the kernel fails policy.kernel (score %d%%, min %d%%); nothing was written", spec.Policy.Pos, rep.Score, v.MinScore)
	}
	fmt.Fprintf(stderr, "bulkhead build: warning: kernel %s scores %d%% and fails the kernel policy (min %d%%, %d rules failed); see %s\n",
		spec.Kernel.Image, rep.Score, v.MinScore, rep.Failed, kernelReportName)
	return nil
}

// write puts the reports beside the outputs and returns their paths and
// formats: sbom.spdx.json, sbom.cdx.json, scan.json, scan.txt and
// kernel-check.txt.
func (g *gateResults) write(stage *output.Stage) ([][2]string, error) {
	dir := stage.Dir()
	if err := g.scan.WriteFiles(dir); err != nil {
		return nil, err
	}
	out := [][2]string{
		{filepath.Join(dir, scan.SPDXFile), "spdx"},
		{filepath.Join(dir, scan.CycloneDXFile), "cyclonedx"},
		{filepath.Join(dir, scan.JSONFile), "scan-json"},
		{filepath.Join(dir, scan.TextFile), "scan-text"},
	}
	p := filepath.Join(dir, kernelReportName)
	if g.kernel == nil {
		stage.Obsolete(kernelReportName) // a stale one would mislead
		return out, nil
	}
	if err := output.WriteFile(p, g.kernel); err != nil {
		return nil, err
	}
	return append(out, [2]string{p, "kernel-check"}), nil
}
