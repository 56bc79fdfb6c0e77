package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"unicode/utf8"

	"github.com/dustin/go-humanize"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/bulkhead-dev/bulkhead/builder/build"
	"github.com/bulkhead-dev/bulkhead/builder/config"
	"github.com/bulkhead-dev/bulkhead/builder/output"
	"github.com/bulkhead-dev/bulkhead/builder/scan"
)

func buildCommand() command {
	return command{
		name:    "build",
		summary: "build a host from one or more spec files",
		run:     runBuild,
	}
}

type buildFlags struct {
	out, name, formats, arch, store, compression string
	locked, offline, asJSON                      bool
	signKey, vulndb                              string
	limits                                       specLimits
	expires                                      string          // update bundles
	secureBoot                                   secureBootFlags // build_uki.go
}

func runBuild(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("build", "[flags] SPEC...", stderr)
	var f buildFlags
	fs.StringVar(&f.out, "o", ".", "output directory")
	fs.StringVar(&f.name, "name", "", "base name of the outputs (default: the first spec's file name without .yml)")
	fs.StringVar(&f.formats, "format", "kernel+initrd", "output formats, comma separated: kernel+initrd, tar, raw-efi (UEFI disk with A/B roots), iso-efi, update (signed update bundle)")
	fs.StringVar(&f.arch, "arch", "amd64", "architecture to build for (os linux)")
	fs.StringVar(&f.store, "store", "", "image store directory (default $BULKHEAD_STORE, else $XDG_CACHE_HOME/bulkhead/store)")
	fs.StringVar(&f.compression, "compression", "zstd", "initrd compression: zstd, gzip, none")
	fs.BoolVar(&f.locked, "locked", false, "refuse any image reference the lock file does not pin")
	fs.BoolVar(&f.offline, "offline", false, "never contact a registry; use the local store only")
	fs.BoolVar(&f.asJSON, "json", false, "print a machine-readable result, on failure too: outputs, digests, sizes, warnings, gate verdicts, errors with positions")
	fs.StringVar(&f.vulndb, "vulndb", "", "OSV database (a directory or zip of OSV JSON records) for the vulnerability gate")
	fs.StringVar(&f.signKey, "sign-key", "", "sign the outputs with this private key (a PEM file, or env://NAME)")
	fs.StringVar(&f.expires, "expires", "", "update bundle expiry: a time, a date, a duration from SOURCE_DATE_EPOCH, or now+DURATION (default: the spec's update.expires)")
	addSpecLimitFlags(fs, &f.limits)
	addSecureBootFlags(fs, &f.secureBoot)
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	specs := fs.Args()
	if len(specs) == 0 {
		fs.Usage()
		return fmt.Errorf("%w: no spec files given", errUsage)
	}
	if f.name == "" {
		f.name = build.DefaultName(specs[0])
	}
	if err := checkOutputName(f.name); err != nil {
		return fmt.Errorf("%w: --name: %v", errUsage, err)
	}
	epoch, err := sourceDateEpoch()
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	sum, err := buildHost(ctx, specs, f, epoch, stderr, newProgress(stderr))
	if f.asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if jerr := enc.Encode(sum); jerr != nil && err == nil {
			return jerr
		}
		return err
	}
	if err != nil {
		return err
	}
	// Human sizes and short digests keep the lines narrow; --json has
	// both whole.
	tw := tabwriter.NewWriter(stdout, 2, 8, 1, ' ', 0)
	for _, o := range sum.Outputs {
		fmt.Fprintf(tw, "%s\t%8s  %s\n", o.Path, humanize.Bytes(uint64(o.Size)), scan.ShortDigests(o.Digest))
	}
	if r := sum.Root; r != nil {
		fmt.Fprintf(tw, "root %s\t%8s  root hash %s…\n", r.Version, humanize.Bytes(uint64(r.Size)), short(r.RootHash))
	}
	return tw.Flush()
}

type buildSummary struct {
	// OK is whether the build wrote its outputs; Errors say why not.
	OK       bool              `json:"ok"`
	Errors   []validateProblem `json:"errors"`
	Warnings []validateProblem `json:"warnings"`
	Gates    gatesSummary      `json:"gates"`
	Images   []imageSummary    `json:"images"`
	Outputs  []outputSummary   `json:"outputs"`
	// Root is the verified root image of raw-efi and iso-efi outputs.
	Root *rootSummary `json:"root,omitempty"`
}

// rootSummary describes the verified root image: what a boot entry or an
// update needs to check it.
type rootSummary struct {
	Version  string `json:"version"`
	RootHash string `json:"root_hash"`
	// Verity is the bulkhead.verity= value: data blocks, hash start, salt
	// and root hash.
	Verity string `json:"verity"`
	Size   int64  `json:"size"`
}

// gatesSummary holds the gates' verdicts; a gate that did not run is
// absent.
type gatesSummary struct {
	Kernel *kernelSummary `json:"kernel,omitempty"`
	Scan   *scanSummary   `json:"scan,omitempty"`
}

type kernelSummary struct {
	Image    string   `json:"image"`
	Score    int      `json:"score"`
	MinScore int      `json:"min_score"`
	Failed   int      `json:"failed_rules"`
	Reasons  []string `json:"reasons,omitempty"`
	Pass     bool     `json:"pass"`
	Enforce  bool     `json:"enforce"`
	Report   string   `json:"report,omitempty"`
}

type scanSummary struct {
	Pass     bool     `json:"pass"`
	Failed   []string `json:"failed"`
	Packages int      `json:"packages"`
	Report   string   `json:"report,omitempty"`
}

type imageSummary struct {
	Ref    string `json:"ref"`
	Name   string `json:"name"`
	Digest string `json:"digest"`
}

type outputSummary struct {
	Path   string `json:"path"`
	Format string `json:"format"`
	Size   int64  `json:"size"`
	Digest string `json:"digest"`
}

// buildHost runs the pipeline (builder/build) with the flags' options: the
// CLI's part is the terminal. progress gets the steps; warnings and the
// findings that stop a build go to stderr. The summary is there on
// failure too: the errors, the warnings so far, and the gates' verdicts.
func buildHost(ctx context.Context, specs []string, f buildFlags, epoch int64, stderr io.Writer, progress func(format string, args ...any)) (*buildSummary, error) {
	t := &terminal{stderr: stderr, progress: progress}
	r, err := runBuilder(ctx, specs, f, epoch, t)
	sum := summarize(r)
	sum.Warnings = t.warnings
	if err != nil {
		sum.OK = false
		sum.Errors = problemsOf(build.Problems(err))
		var ge *build.GateError
		var ke *build.KernelPolicyError
		if errors.As(err, &ge) {
			sum.Gates.Scan = &scanSummary{Failed: ge.Report.Failed(), Packages: len(ge.Report.Packages)}
		}
		if errors.As(err, &ke) {
			sum.Gates.Kernel = kernelOf(ke.Verdict, "")
		}
		return sum, explain(err, stderr)
	}
	return sum, nil
}

func runBuilder(ctx context.Context, specs []string, f buildFlags, epoch int64, t *terminal) (*build.Result, error) {
	formats, err := parseFormats(f.formats)
	if err != nil {
		return nil, err
	}
	comp, err := output.ParseCompression(f.compression)
	if err != nil {
		return nil, fmt.Errorf("%w: --compression: %v", errUsage, err)
	}
	platform, err := v1.ParsePlatform("linux/" + f.arch)
	if err != nil {
		return nil, fmt.Errorf("%w: --arch %q: %v", errUsage, f.arch, err)
	}
	if slices.Contains(formats, "update") && f.signKey == "" {
		return nil, fmt.Errorf("%w: an update bundle must be signed: give --sign-key", errUsage)
	}
	opts := []build.Option{
		build.WithOutput(f.out), build.WithName(f.name), build.WithFormats(formats...), build.WithPlatform(*platform),
		build.WithStore(f.store), build.WithCompression(comp), build.WithLocked(f.locked), build.WithOffline(f.offline),
		build.WithVulnDB(f.vulndb), build.WithSpecOptions(f.limits.options()...), build.WithExpires(f.expires),
		build.WithEpoch(epoch), build.WithBuilderVersion(bulkheadVersion()),
		build.WithProgress(t),
	}
	sbOpts, err := f.secureBoot.options()
	if err != nil {
		return nil, err
	}
	opts = append(opts, sbOpts...)
	if f.signKey != "" {
		opts = append(opts, build.WithSignKeyRef(f.signKey))
	}
	b, err := build.New(specs, opts...)
	if err != nil {
		return nil, err
	}
	return b.Build(ctx)
}

// terminal shows a build's events: warnings on stderr, steps through
// progress; it keeps the warnings for --json.
type terminal struct {
	stderr   io.Writer
	progress func(format string, args ...any)
	warnings []validateProblem
}

func (t *terminal) Event(e build.Event) {
	if e.Warning {
		t.warnings = append(t.warnings, problemOf(build.Problem{Pos: e.Pos, Msg: e.Message}, "warning"))
	}
	switch {
	case e.Warning && e.Pos != (config.Pos{}):
		fmt.Fprintf(t.stderr, "%s: warning: %s\n", e.Pos, e.Message)
	case e.Warning:
		fmt.Fprintf(t.stderr, "bulkhead build: warning: %s\n", e.Message)
	default:
		t.progress("%s", e.Message)
	}
}

// explain prints what a failed build found (the images' problems, the
// gates' findings, the kernel report) on stderr and returns the error for
// the exit status.
func explain(err error, stderr io.Writer) error {
	var ie *build.ImageErrors
	var ge *build.GateError
	var ke *build.KernelPolicyError
	switch {
	case errors.As(err, &ie):
		fmt.Fprintln(stderr, ie)
		return exitError{1}
	case errors.As(err, &ge):
		ge.Report.Summary(stderr)
	case errors.As(err, &ke):
		stderr.Write(ke.Report)
	}
	return err
}

// summarize is the --json summary of a build; r is nil when
// it failed.
func summarize(r *build.Result) *buildSummary {
	sum := &buildSummary{Errors: []validateProblem{}, Warnings: []validateProblem{}, Images: []imageSummary{}, Outputs: []outputSummary{}}
	if r == nil {
		return sum
	}
	sum.OK = true
	reports := map[string]string{}
	for _, o := range r.Outputs {
		reports[o.Format] = o.Path
	}
	if r.Scan != nil {
		sum.Gates.Scan = &scanSummary{Pass: len(r.Scan.Failed()) == 0, Failed: r.Scan.Failed(), Packages: len(r.Scan.Packages), Report: reports["scan-json"]}
		if sum.Gates.Scan.Failed == nil {
			sum.Gates.Scan.Failed = []string{}
		}
	}
	sum.Gates.Kernel = kernelOf(r.Kernel, reports["kernel-check"])
	for _, img := range r.Images {
		sum.Images = append(sum.Images, imageSummary{Ref: img.Ref, Name: img.Name, Digest: img.Digest})
	}
	for _, o := range r.Outputs {
		sum.Outputs = append(sum.Outputs, outputSummary{Path: o.Path, Format: o.Format, Size: o.Size, Digest: o.Digest})
	}
	if root := r.Root; root != nil {
		sum.Root = &rootSummary{Version: root.Version, RootHash: root.RootHash, Verity: root.Verity, Size: root.Size}
	}
	return sum
}

// newProgress reports build steps on w when it is a terminal, and nothing
// otherwise (CI logs and pipes stay quiet).
func newProgress(w io.Writer) func(format string, args ...any) {
	f, ok := w.(*os.File)
	if !ok {
		return func(string, ...any) {}
	}
	if fi, err := f.Stat(); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return func(string, ...any) {}
	}
	return func(format string, args ...any) { fmt.Fprintf(w, "bulkhead build: "+format+"\n", args...) }
}

func parseFormats(s string) ([]string, error) {
	var out []string
	for _, f := range strings.Split(s, ",") {
		switch f = strings.TrimSpace(f); f {
		case "kernel+initrd", "tar", "raw-efi", "iso-efi", "update":
			if !slices.Contains(out, f) {
				out = append(out, f)
			}
		default:
			return nil, fmt.Errorf("%w: unknown format %q (known: kernel+initrd, tar, raw-efi, iso-efi, update)", errUsage, f)
		}
	}
	return out, nil
}

// checkOutputName accepts a --name that is a plain file name: outputs are
// NAME.tar, NAME.img and so on inside -o, never beside it, and their names
// go into SHA256SUMS one per line.
func checkOutputName(name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return fmt.Errorf("%q is not a file name", name)
	case strings.ContainsRune(name, '/'):
		return fmt.Errorf("%q is a path: give a file name, and the directory with -o", name)
	case strings.HasPrefix(name, "."):
		return fmt.Errorf("%q starts with a dot: the outputs would be hidden", name)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || r == utf8.RuneError {
			return fmt.Errorf("%q holds a control character or is not UTF-8", name)
		}
	}
	return nil
}

func kernelOf(v *build.KernelVerdict, report string) *kernelSummary {
	if v == nil {
		return nil
	}
	return &kernelSummary{Image: v.Image, Score: v.Score, MinScore: v.MinScore, Failed: v.Failed, Reasons: v.Reasons,
		Pass: v.Pass, Enforce: v.Enforce, Report: report}
}

// problemOf is p as --json shows it.
func problemOf(p build.Problem, severity string) validateProblem {
	return validateProblem{File: p.Pos.File, Line: p.Pos.Line, Col: p.Pos.Col, Severity: severity, Message: p.Msg}
}

func problemsOf(ps []build.Problem) []validateProblem {
	out := make([]validateProblem, len(ps))
	for i, p := range ps {
		out[i] = problemOf(p, "error")
	}
	return out
}
