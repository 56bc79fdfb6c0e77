package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/bulkhead-dev/bulkhead/builder/config"
	"github.com/bulkhead-dev/bulkhead/builder/output"
	"github.com/bulkhead-dev/bulkhead/builder/resolve"
	"github.com/bulkhead-dev/bulkhead/builder/rootfs"
	"github.com/bulkhead-dev/bulkhead/builder/sign"
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
	expires                                      string          // update bundles (build_update.go)
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
	fs.BoolVar(&f.asJSON, "json", false, "print a machine-readable summary (outputs, digests, sizes)")
	fs.StringVar(&f.vulndb, "vulndb", "", "OSV database (a directory or zip of OSV JSON records) for the vulnerability gate")
	fs.StringVar(&f.signKey, "sign-key", "", "sign the outputs with this private key (a PEM file, or env://NAME)")
	fs.StringVar(&f.expires, "expires", "", "update bundle expiry: a time, a date, a duration from SOURCE_DATE_EPOCH, or now+DURATION (default: the spec's update.expires)")
	addSpecLimitFlags(fs, &f.limits)
	addSecureBootFlags(fs, &f.secureBoot)
	if err := fs.Parse(args); err != nil {
		return err
	}
	specs := fs.Args()
	if len(specs) == 0 {
		fs.Usage()
		return fmt.Errorf("%w: no spec files given", errUsage)
	}
	if f.name == "" {
		f.name = strings.TrimSuffix(strings.TrimSuffix(filepath.Base(specs[0]), ".yml"), ".yaml")
	}
	if err := checkOutputName(f.name); err != nil {
		return fmt.Errorf("%w: --name: %v", errUsage, err)
	}
	epoch, err := sourceDateEpoch()
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	sum, err := build(ctx, specs, f, epoch, stderr, newProgress(stderr))
	if err != nil {
		return err
	}
	if f.asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(sum)
	}
	for _, o := range sum.Outputs {
		fmt.Fprintf(stdout, "%s\t%d bytes\t%s\n", o.Path, o.Size, o.Digest)
	}
	if r := sum.Root; r != nil {
		fmt.Fprintf(stdout, "root %s\t%d bytes\troot hash %s\n", r.Version, r.Size, r.RootHash)
	}
	return nil
}

type buildSummary struct {
	Images  []imageSummary  `json:"images"`
	Outputs []outputSummary `json:"outputs"`
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

func build(ctx context.Context, specs []string, f buildFlags, epoch int64, stderr io.Writer, progress func(format string, args ...any)) (*buildSummary, error) {
	formats, err := parseFormats(f.formats)
	if err != nil {
		return nil, err
	}
	comp, err := output.ParseCompression(f.compression)
	if err != nil {
		return nil, fmt.Errorf("%w: --compression: %v", errUsage, err)
	}
	spec, text, err := loadSpecs(specs, f.limits)
	if err != nil {
		return nil, err
	}
	printWarnings(stderr, spec.Warnings)
	if err := checkUpdate(formats, spec, f, epoch); err != nil {
		return nil, err
	}
	if err := f.secureBoot.check(spec); err != nil {
		return nil, err
	}
	var key *sign.PrivateKey
	if f.signKey != "" {
		if key, err = loadSignKey(f.signKey); err != nil {
			return nil, err
		}
	}
	refs := specRefs(spec)
	if slices.ContainsFunc(formats, isDiskFormat) {
		refs = appendDiskRefs(refs, spec)
	}
	progress("resolving %d image references", len(refs))
	images, sum, err := resolveSpec(ctx, spec, refs, specs[0], f, stderr)
	if err != nil {
		return nil, err
	}
	for _, img := range sum.Images {
		progress("  %s -> %s", img.Ref, img.Digest)
	}
	progress("assembling the root")
	host, err := rootfs.Assemble(ctx, spec, images, assembleOptions(spec, specs[0], epoch)...)
	if err != nil {
		return nil, err // rootfs names the step: "assembling root: …"
	}
	// Every file of the build goes to a stage inside the output directory
	// and moves into place only once every format and gate succeeded.
	stage, err := output.NewStage(f.out)
	if err != nil {
		return nil, err
	}
	defer stage.Abort()
	job := &buildJob{spec: spec, text: text, specs: specs, host: host, images: images, sum: sum,
		formats: formats, key: key, f: f, comp: comp, epoch: epoch, stderr: stderr, progress: progress}
	if err := job.write(ctx, stage); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := stage.Commit(); err != nil {
		return nil, err
	}
	for i := range sum.Outputs {
		sum.Outputs[i].Path = stage.Final(sum.Outputs[i].Path)
	}
	return sum, nil
}

// buildJob is a build whose root is assembled: what writing it needs.
type buildJob struct {
	spec     *config.Spec
	text     []byte
	specs    []string
	host     *rootfs.Host
	images   map[string]*resolve.Image
	sum      *buildSummary
	formats  []string
	key      *sign.PrivateKey
	f        buildFlags
	comp     output.Compression
	epoch    int64
	stderr   io.Writer
	progress func(format string, args ...any)
}

// write runs the gates and writes every format, the reports and the
// signatures into the stage.
func (j *buildJob) write(ctx context.Context, stage *output.Stage) error {
	j.f.out = stage.Dir()
	j.progress("root: %d entries", j.host.Tree.Len())
	j.progress("checking the kernel and scanning the root")
	gates, err := runGates(ctx, j.spec, j.text, j.specs[0], j.host, j.images, j.f, j.epoch, j.stderr)
	if err != nil {
		return err
	}
	if err := j.writeFormats(ctx); err != nil {
		return err
	}
	// The SBOMs and reports are artifacts too: listed, and signed with the
	// rest.
	reports, err := gates.write(stage)
	if err != nil {
		return err
	}
	for _, r := range reports {
		if err := j.add(r[0], r[1]); err != nil {
			return err
		}
	}
	if j.key == nil {
		return nil
	}
	j.progress("signing the outputs")
	platform, _ := v1.ParsePlatform("linux/" + j.f.arch)
	return signBuild(ctx, j.key, j.f.out, j.specs, j.sum, *platform)
}

// writeFormats writes each output format.
func (j *buildJob) writeFormats(ctx context.Context) error {
	// Only bulkhead's init can boot a verified root.
	verified := hasBulkheadInit(j.host.Tree)
	var db *diskBuild
	defer func() { db.close() }()
	for _, format := range j.formats {
		j.progress("writing %s", format)
		if db == nil && (usesRootImage(format) || format == "kernel+initrd" && verified) {
			if !verified {
				return fmt.Errorf("writing %s: a verified root needs bulkhead's init as /init (the image bulkhead/init, %s): it checks and mounts the root image", format, initPackage)
			}
			j.progress("writing the verified root image")
			var err error
			if db, err = newDiskBuild(ctx, j.spec, j.host, j.images, j.f, j.comp, j.epoch); err != nil {
				return fmt.Errorf("writing %s: %w", format, err)
			}
			j.sum.Root = db.summary()
		}
		paths, err := writeFormat(ctx, format, j.host, db, j.f, j.comp)
		if err != nil {
			return fmt.Errorf("writing %s: %w", format, err)
		}
		for _, p := range paths {
			if err := j.add(p, format); err != nil {
				return err
			}
		}
	}
	return nil
}

// add lists an output file in the summary.
func (j *buildJob) add(path, format string) error {
	o, err := describeOutput(path, format)
	if err != nil {
		return err
	}
	j.sum.Outputs = append(j.sum.Outputs, o)
	return nil
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

// resolveSpec resolves the spec's image references, pinned by the
// lock file next to the first spec when there is one.
func resolveSpec(ctx context.Context, spec *config.Spec, refs []specRef, first string, f buildFlags, stderr io.Writer) (map[string]*resolve.Image, *buildSummary, error) {
	platform, err := v1.ParsePlatform("linux/" + f.arch)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: --arch %q: %v", errUsage, f.arch, err)
	}
	lock, err := resolve.LoadLockIfExists(resolve.LockPath(first))
	if err != nil {
		return nil, nil, err
	}
	storeDir := f.store
	if storeDir == "" {
		if storeDir, err = resolve.DefaultStoreDir(); err != nil {
			return nil, nil, err
		}
	}
	store, err := resolve.OpenStore(storeDir)
	if err != nil {
		return nil, nil, err
	}
	r, err := resolve.NewResolver(resolve.WithStore(store), resolve.WithPlatform(*platform), resolve.WithLimits(layerLimits(spec)),
		resolve.WithDir(filepath.Dir(first)), resolve.WithLock(lock),
		resolve.WithLocked(f.locked), resolve.WithOffline(f.offline))
	if err != nil {
		return nil, nil, err
	}
	imgs, err := r.ResolveAll(ctx, refStrings(refs))
	if err != nil {
		for _, e := range positioned(err, refs) {
			fmt.Fprintln(stderr, e)
		}
		return nil, nil, exitError{1}
	}
	if _, err := checkTrust(ctx, spec, refs, imgs, lock, *platform, store, f.offline, f.locked); err != nil {
		fmt.Fprintln(stderr, err)
		return nil, nil, exitError{1}
	}
	images := map[string]*resolve.Image{}
	sum := &buildSummary{Images: []imageSummary{}, Outputs: []outputSummary{}}
	for i, ref := range refs {
		images[ref.ref] = imgs[i]
		sum.Images = append(sum.Images, imageSummary{Ref: ref.ref, Name: imgs[i].Name, Digest: imgs[i].Digest.String()})
	}
	return images, sum, nil
}

func writeFormat(ctx context.Context, format string, host *rootfs.Host, db *diskBuild, f buildFlags, comp output.Compression) ([]string, error) {
	switch format {
	case "raw-efi":
		p, err := db.writeRaw(ctx)
		return []string{p}, err
	case "iso-efi":
		p, err := db.writeISO(ctx)
		return []string{p}, err
	case "update":
		p, err := db.writeUpdate(ctx)
		return []string{p}, err
	case "kernel+initrd":
		if db != nil {
			return db.writeKernelInitrd(ctx)
		}
		return writeKernelInitrd(ctx, host, f, comp)
	case "tar":
		p := filepath.Join(f.out, f.name+".tar")
		af, err := output.Create(p)
		if err != nil {
			return nil, err
		}
		defer af.Abort()
		if err := output.WriteTar(ctx, af, host.Tree); err != nil {
			return nil, err
		}
		return []string{p}, af.Commit()
	}
	return nil, fmt.Errorf("unknown format %q", format)
}

func writeKernelInitrd(ctx context.Context, host *rootfs.Host, f buildFlags, comp output.Compression) ([]string, error) {
	if host.Kernel == nil {
		return nil, fmt.Errorf("the spec names no kernel image")
	}
	kernel, c, err := host.Kernel.ReaderAt()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	in := output.Inputs{Cmdline: host.Cmdline, Tree: host.Tree, Kernel: kernel, KernelSize: host.Kernel.Size}
	opts, done, err := initrdOptions(host, comp)
	if err != nil {
		return nil, err
	}
	defer done()
	ki, err := output.WriteKernelInitrd(ctx, f.out, f.name, in, opts...)
	if err != nil {
		return nil, err
	}
	return []string{ki.Kernel, ki.Initrd, ki.Cmdline}, nil
}

// initrdOptions are the initrd writer's options for host: the compression
// and, when the kernel image has microcode, the microcode in front. done
// releases the microcode's file.
func initrdOptions(host *rootfs.Host, comp output.Compression) (opts []output.Option, done func(), err error) {
	opts = []output.Option{output.WithCompression(comp)}
	if host.Ucode == nil {
		return opts, func() {}, nil
	}
	rc, err := host.Ucode.Open()
	if err != nil {
		return nil, nil, err
	}
	return append(opts, output.WithUcode(rc)), func() { rc.Close() }, nil
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
