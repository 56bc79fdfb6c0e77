// Package build is bulkhead's build pipeline: host specs in, the host's
// artifacts out. Each stage takes the value the stage before returned and
// returns a new one; none edits what it was given:
//
//	Load      specs -> *Loaded        builder/config       parse, merge, validate (Check: the spec-level checks alone)
//	Resolve         -> *Resolved      builder/resolve      digest-pinned images; builder/trust checks signatures
//	Assemble        -> *rootfs.Host   builder/rootfs       the root tree in memory (CheckContainers: what
//	                                                       each container needs of its image)
//	Gates           -> *Gates         builder/kernelcheck, builder/scan: kernel policy, SBOM, vulnerabilities,
//	                                                       secrets, minimality; the SBOM entry to add
//	RootImage       -> *RootImage     builder/rootimg      the verified root image (dm-verity)
//	Artifacts       -> []Output       builder/output, builder/disk, builder/bundler: kernel+initrd, tar,
//	                                                       raw-efi, iso-efi, update bundle
//	Sign                              builder/sign         SHA256SUMS, Sigstore bundles, SLSA provenance
//
// Build runs them all and moves the outputs into place only once every
// format and gate succeeded. The package prints nothing: progress and
// warnings go to the Progress given WithProgress.
package build

import (
	"context"
	"crypto/rsa"
	"fmt"
	"slices"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/bulkhead-dev/bulkhead/builder/config"
	"github.com/bulkhead-dev/bulkhead/builder/output"
	"github.com/bulkhead-dev/bulkhead/builder/resolve"
	"github.com/bulkhead-dev/bulkhead/builder/rootfs"
	"github.com/bulkhead-dev/bulkhead/builder/scan"
	"github.com/bulkhead-dev/bulkhead/builder/secureboot"
	"github.com/bulkhead-dev/bulkhead/builder/sign"
)

// Formats returns the output formats Build writes.
func Formats() []string { return []string{"kernel+initrd", "tar", "raw-efi", "iso-efi", "update"} }

// Builder builds the host its specs describe.
type Builder struct {
	specs []string
	o     options
	// store opens the image store once: resolving, the scan cache and
	// the archive cache share it (and its stamps).
	store func() (*resolve.Store, error)
}

type options struct {
	out, name, store, vulndb, expires, version string
	formats                                    []string
	platform                                   v1.Platform
	compression                                output.Compression
	locked, offline                            bool
	key                                        *sign.PrivateKey
	keyRef                                     string
	specOpts                                   []config.Option
	epoch                                      int64
	now                                        func() time.Time
	progress                                   Progress
	// Secure Boot and measured boot (uki.go).
	sbKey, sbCert, sbEnroll, pcrKey string
	sbSigner                        *secureboot.Signer // loaded by Check
	pcrSigner                       *rsa.PrivateKey    // loaded by Check
}

// Option configures a Builder.
type Option func(*options) error

// WithOutput is the directory the outputs go to (default ".").
func WithOutput(dir string) Option { return func(o *options) error { o.out = dir; return nil } }

// WithName is the base name of the outputs (NAME.tar, NAME.img, ...);
// the default is the first spec's file name without .yml.
func WithName(name string) Option { return func(o *options) error { o.name = name; return nil } }

// WithFormats are the formats to write (default kernel+initrd), from
// Formats(); each is written once.
func WithFormats(formats ...string) Option {
	return func(o *options) error {
		o.formats = nil
		for _, f := range formats {
			if !slices.Contains(Formats(), f) {
				return fmt.Errorf("unknown format %q", f)
			}
			if !slices.Contains(o.formats, f) {
				o.formats = append(o.formats, f)
			}
		}
		return nil
	}
}

// WithPlatform is the platform images are resolved for (default
// linux/amd64).
func WithPlatform(p v1.Platform) Option { return func(o *options) error { o.platform = p; return nil } }

// WithStore is the image store directory (default resolve.DefaultStoreDir).
func WithStore(dir string) Option { return func(o *options) error { o.store = dir; return nil } }

// WithCompression is the initrd compression (default zstd).
func WithCompression(c output.Compression) Option {
	return func(o *options) error { o.compression = c; return nil }
}

// WithLocked refuses any image reference the lock file does not pin.
func WithLocked(locked bool) Option { return func(o *options) error { o.locked = locked; return nil } }

// WithOffline never contacts a registry: the local store only.
func WithOffline(offline bool) Option {
	return func(o *options) error { o.offline = offline; return nil }
}

// WithSignKey signs the outputs (and is what signs an update bundle).
func WithSignKey(k *sign.PrivateKey) Option { return func(o *options) error { o.key = k; return nil } }

// WithSignKeyRef signs with the key sign.LoadPrivateKey reads from ref (a
// PEM file, or env://NAME), loaded once the spec-level checks passed.
func WithSignKeyRef(ref string) Option { return func(o *options) error { o.keyRef = ref; return nil } }

// WithVulnDB is the OSV database for the vulnerability gate.
func WithVulnDB(path string) Option { return func(o *options) error { o.vulndb = path; return nil } }

// WithSpecOptions are the options the specs are read with (size limits).
func WithSpecOptions(opts ...config.Option) Option {
	return func(o *options) error { o.specOpts = opts; return nil }
}

// WithExpires is the update bundle's expiry (as --expires takes it),
// overriding the spec's update.expires.
func WithExpires(s string) Option { return func(o *options) error { o.expires = s; return nil } }

// WithEpoch is SOURCE_DATE_EPOCH: every timestamp in the outputs.
func WithEpoch(epoch int64) Option { return func(o *options) error { o.epoch = epoch; return nil } }

// WithClock is the time the vulnerability gate and "now+" expiries count
// from (default time.Now). Nothing written into an artifact reads it.
func WithClock(now func() time.Time) Option {
	return func(o *options) error { o.now = now; return nil }
}

// WithProgress receives the build's steps and warnings.
func WithProgress(p Progress) Option { return func(o *options) error { o.progress = p; return nil } }

// WithBuilderVersion is bulkhead's version, for the provenance.
func WithBuilderVersion(v string) Option { return func(o *options) error { o.version = v; return nil } }

// New returns a Builder for the specs (merged in order).
func New(specs []string, opts ...Option) (*Builder, error) {
	if len(specs) == 0 {
		return nil, fmt.Errorf("no spec files given")
	}
	b := &Builder{specs: slices.Clone(specs), o: options{
		out: ".", formats: []string{"kernel+initrd"}, compression: output.Zstd,
		platform: v1.Platform{OS: "linux", Architecture: "amd64"}, now: time.Now, version: "dev",
	}}
	for _, opt := range opts {
		if err := opt(&b.o); err != nil {
			return nil, err
		}
	}
	if b.o.name == "" {
		b.o.name = DefaultName(specs[0])
	}
	if b.o.progress == nil {
		b.o.progress = ProgressFunc(func(Event) {})
	}
	b.store = sync.OnceValues(func() (*resolve.Store, error) { return OpenStore(b.o.store) })
	return b, nil
}

// Result is what a build wrote.
type Result struct {
	Images  []Image  // the resolved images, in spec order
	Outputs []Output // every file written, reports and signatures' subjects included
	// Root is the verified root image of raw-efi, iso-efi, update and a
	// verified kernel+initrd; nil otherwise.
	Root *Root
	// Scan is the gates' report.
	Scan *scan.Report
	// Kernel is the kernel check's verdict, nil when it did not run.
	Kernel *KernelVerdict
}

// Root describes the verified root image: what a boot entry or an update
// needs to check it.
type Root struct {
	Version  string
	RootHash string
	// Verity is the bulkhead.verity= value: data blocks, hash start, salt
	// and root hash.
	Verity string
	Size   int64
}

// Output is one file a build wrote.
type Output struct {
	Path   string
	Format string
	Size   int64
	Digest string // sha256:...
}

// Build runs the pipeline and moves the outputs into the output directory
// once every format and gate succeeded; on error nothing is left there.
func (b *Builder) Build(ctx context.Context) (*Result, error) {
	l, err := b.Load()
	if err != nil {
		return nil, err
	}
	if err := b.Check(l); err != nil {
		return nil, err
	}
	if b.o.key == nil && b.o.keyRef != "" {
		if b.o.key, err = sign.LoadPrivateKey(b.o.keyRef); err != nil {
			return nil, err
		}
	}
	res, err := b.Resolve(ctx, l)
	if err != nil {
		return nil, err
	}
	b.step("assemble", "assembling the root")
	host, err := b.Assemble(ctx, l, res)
	if err != nil {
		return nil, err
	}
	if err := CheckContainers(l.Spec, host.Tree); err != nil {
		return nil, err
	}
	stage, err := output.NewStage(b.o.out)
	if err != nil {
		return nil, err
	}
	defer stage.Abort()
	r, err := b.write(ctx, stage, l, res, host)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := stage.Commit(); err != nil {
		return nil, err
	}
	for i := range r.Outputs {
		r.Outputs[i].Path = stage.Final(r.Outputs[i].Path)
	}
	return r, nil
}

// write runs the gates and writes every format, the reports and the
// signatures into the stage.
func (b *Builder) write(ctx context.Context, stage *output.Stage, l *Loaded, res *Resolved, host *rootfs.Host) (*Result, error) {
	dir := stage.Dir()
	b.step("assemble", "root: %d entries", host.Tree.Len())
	b.step("gates", "checking the kernel and scanning the root")
	hostInit := DetectInit(host.Tree)
	gates, err := b.Gates(ctx, l, res, host, hostInit)
	if err != nil {
		return nil, err
	}
	host = gates.Apply(host)
	r := &Result{Images: res.List, Outputs: []Output{}, Scan: gates.Scan, Kernel: gates.Kernel}
	arts := &artifacts{b: b, dir: dir, spec: l.Spec, host: host, images: res.Images, hostInit: hostInit}
	defer arts.close()
	outs, err := arts.write(ctx)
	if err != nil {
		return nil, err
	}
	r.Outputs = append(r.Outputs, outs...)
	if arts.root != nil {
		r.Root = arts.root.summary()
	}
	// The SBOMs and reports are artifacts too: listed, and signed with the
	// rest.
	reports, err := gates.write(stage, b.o.name)
	if err != nil {
		return nil, err
	}
	for _, rep := range reports {
		o, err := describe(rep[0], rep[1])
		if err != nil {
			return nil, err
		}
		r.Outputs = append(r.Outputs, o)
	}
	if b.o.key == nil {
		return r, nil
	}
	b.step("sign", "signing the outputs")
	return r, Sign(ctx, b.o.key, dir, b.specs, r, b.o.platform, b.o.version)
}
