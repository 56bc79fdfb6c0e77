package recipe

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Manifest annotations recording what went into an image. The values of
// the JSON ones decode into []GoInput, []DebianInput and []string.
const (
	AnnotationTitle   = "org.opencontainers.image.title"
	AnnotationVersion = "org.opencontainers.image.version"
	AnnotationCreated = "org.opencontainers.image.created"
	// AnnotationRecipe is the recipe's path relative to its module.
	AnnotationRecipe    = "dev.bulkhead.recipe"
	AnnotationGoVersion = "dev.bulkhead.go.version"
	AnnotationGo        = "dev.bulkhead.go.programs"     // JSON []GoInput
	AnnotationDebian    = "dev.bulkhead.debian.packages" // JSON []DebianInput
	// AnnotationKernel is the kernel release (uname -r), and
	// AnnotationKernelModules the modules in kernel.tar (JSON []string).
	AnnotationKernel        = "dev.bulkhead.kernel.release"
	AnnotationKernelModules = "dev.bulkhead.kernel.modules"
	// AnnotationKernelSource is what a kernel build script built from
	// (kernel.build): its source.json, as it wrote it.
	AnnotationKernelSource = "dev.bulkhead.kernel.source"
)

// LabelLinuxKit is the image label LinuxKit reads runtime defaults from.
const LabelLinuxKit = "org.mobyproject.config"

// Option configures Build.
type Option func(*builder) error

// WithCacheDir keeps built binaries, fetched Debian packages and extracted
// kernels in dir, keyed by their inputs. The default is
// $XDG_CACHE_HOME/bulkhead/recipe.
func WithCacheDir(dir string) Option {
	return func(b *builder) error {
		if dir == "" {
			return errors.New("empty cache directory")
		}
		b.cacheDir = dir
		return nil
	}
}

// WithSourceDateEpoch sets the time of every file and of the image config,
// in seconds since 1970 (SOURCE_DATE_EPOCH). The default is 0.
func WithSourceDateEpoch(sec int64) Option {
	return func(b *builder) error {
		if sec < 0 {
			return fmt.Errorf("negative source date epoch %d", sec)
		}
		b.epoch = time.Unix(sec, 0).UTC()
		return nil
	}
}

// WithProgress sends a line per step, and the output of the tools run, to w.
func WithProgress(w io.Writer) Option {
	return func(b *builder) error {
		b.progress = w
		return nil
	}
}

// builder builds one recipe.
type builder struct {
	recipe   *Recipe
	cacheDir string
	epoch    time.Time
	progress io.Writer

	goVer string
	mod   module
	// annotations collects what went in.
	goIn     []GoInput
	debIn    []DebianInput
	kernel   string
	kmodules []string
	ksource  string
}

// Build builds the image r describes.
func Build(ctx context.Context, r *Recipe, opts ...Option) (v1.Image, error) {
	b := &builder{recipe: r, epoch: time.Unix(0, 0).UTC(), progress: io.Discard}
	for _, o := range opts {
		if err := o(b); err != nil {
			return nil, fmt.Errorf("building %s: %w", r.Ref(), err)
		}
	}
	if b.cacheDir == "" {
		d, err := os.UserCacheDir()
		if err != nil {
			return nil, fmt.Errorf("building %s: finding a cache directory: %w", r.Ref(), err)
		}
		b.cacheDir = filepath.Join(d, "bulkhead", "recipe")
	}
	img, err := b.build(ctx)
	if err != nil {
		return nil, fmt.Errorf("building %s: %w", r.Ref(), err)
	}
	return img, nil
}

func (b *builder) build(ctx context.Context) (v1.Image, error) {
	t := newTree()
	steps := []func(context.Context, *tree) error{b.addGo, b.addDebian, b.addKernel, b.addFiles}
	for _, step := range steps {
		if err := step(ctx, t); err != nil {
			return nil, err
		}
	}
	layer, err := t.layer(b.epoch, b.cacheDir)
	if err != nil {
		return nil, err
	}
	return b.image(ctx, layer)
}

func (b *builder) addGo(ctx context.Context, t *tree) error {
	for _, p := range b.recipe.Go {
		b.logf("go: %s -> %s", p.ImportPath(), p.Output)
		bin, in, err := b.goProgram(ctx, p)
		if err != nil {
			return err
		}
		b.goIn = append(b.goIn, in)
		if err := t.add(fileEntry(p.Output, 0o755, bin)); err != nil {
			return err
		}
	}
	return nil
}

func (b *builder) addFiles(_ context.Context, t *tree) error {
	for _, f := range b.recipe.Files {
		if err := t.add(b.fileEntry(f)); err != nil {
			return err
		}
	}
	return nil
}

func (b *builder) fileEntry(f File) entry {
	mode := func(def int64) int64 {
		if f.Mode != nil {
			return int64(*f.Mode)
		}
		return def
	}
	switch {
	case f.Directory:
		return dirEntry(f.Path, mode(0o755))
	case f.Symlink != "":
		return symlinkEntry(f.Path, f.Symlink)
	case f.Source != "":
		return fileEntry(f.Path, mode(0o644), filepath.Join(b.recipe.Dir, f.Source))
	default:
		return dataEntry(f.Path, mode(0o644), []byte(*f.Contents))
	}
}

// image wraps the layer in an image with the recipe's config and the
// annotations recording the inputs.
func (b *builder) image(ctx context.Context, layer v1.Layer) (v1.Image, error) {
	created := v1.Time{Time: b.epoch}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err := mutate.Append(img, mutate.Addendum{Layer: layer, History: v1.History{
		Created: created, CreatedBy: "bulkhead image build " + b.recipePath(ctx),
	}})
	if err != nil {
		return nil, fmt.Errorf("adding layer: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS, cf.Created = "amd64", "linux", created
	cf.Config, err = b.config()
	if err != nil {
		return nil, err
	}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return nil, fmt.Errorf("setting config: %w", err)
	}
	ann, err := b.annotations(ctx)
	if err != nil {
		return nil, err
	}
	return mutate.Annotations(img, ann).(v1.Image), nil
}

func (b *builder) config() (v1.Config, error) {
	c := b.recipe.Config
	cfg := v1.Config{Entrypoint: c.Entrypoint, Cmd: c.Cmd, Env: c.Env, WorkingDir: c.WorkingDir, User: c.User}
	if len(c.Labels) > 0 || c.LinuxKit != nil {
		cfg.Labels = map[string]string{}
		for k, v := range c.Labels {
			cfg.Labels[k] = v
		}
	}
	if c.LinuxKit != nil {
		j, err := json.Marshal(c.LinuxKit) // map keys come out sorted
		if err != nil {
			return cfg, fmt.Errorf("encoding the linuxkit config: %w", err)
		}
		cfg.Labels[LabelLinuxKit] = string(j)
	}
	return cfg, nil
}

func (b *builder) annotations(ctx context.Context) (map[string]string, error) {
	r := b.recipe
	ann := map[string]string{
		AnnotationTitle:   Repository + "/" + r.Name,
		AnnotationVersion: r.Tag,
		AnnotationCreated: b.epoch.Format(time.RFC3339),
		AnnotationRecipe:  b.recipePath(ctx),
	}
	add := func(key string, v any) error {
		j, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("encoding annotation %s: %w", key, err)
		}
		ann[key] = string(j)
		return nil
	}
	if len(b.goIn) > 0 {
		ann[AnnotationGoVersion] = b.goVer
		if err := add(AnnotationGo, b.goIn); err != nil {
			return nil, err
		}
	}
	if len(b.debIn) > 0 {
		if err := add(AnnotationDebian, b.debIn); err != nil {
			return nil, err
		}
	}
	if b.kernel != "" {
		ann[AnnotationKernel] = b.kernel
		if err := add(AnnotationKernelModules, b.kmodules); err != nil {
			return nil, err
		}
	}
	if b.ksource != "" {
		ann[AnnotationKernelSource] = b.ksource
	}
	return ann, nil
}

// recipePath is the recipe's path relative to its module, so it does not
// depend on where the checkout lives.
func (b *builder) recipePath(ctx context.Context) string {
	name := b.recipe.File
	if name == "" {
		name = filepath.Join(b.recipe.Dir, FileName)
	}
	mod, err := b.localModule(ctx)
	if err != nil {
		return filepath.Base(filepath.Dir(name)) + "/" + filepath.Base(name)
	}
	abs, err := filepath.Abs(name)
	if err != nil {
		return name
	}
	rel, err := filepath.Rel(mod.dir, abs)
	if err != nil || !filepath.IsLocal(rel) {
		return filepath.Base(filepath.Dir(name)) + "/" + filepath.Base(name)
	}
	return filepath.ToSlash(rel)
}

func (b *builder) logf(format string, args ...any) {
	fmt.Fprintf(b.progress, "%s: %s\n", b.recipe.Ref(), fmt.Sprintf(format, args...))
}

// run runs a tool in dir and returns its stdout. Its stderr goes to the
// progress writer, and the end of it into the error.
func (b *builder) run(ctx context.Context, dir string, env []string, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Env = dir, env
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = io.MultiWriter(&stderr, b.progress)
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 2000 {
			msg = "..." + msg[len(msg)-2000:]
		}
		if msg != "" {
			return nil, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, msg)
		}
		return nil, fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return stdout.Bytes(), nil
}

// fill creates the cache directory dst by running fn on a fresh temporary
// directory next to it and renaming that into place, so a cache entry is
// either complete or absent, also when two builds race.
func (b *builder) fill(dst string, fn func(dir string) error) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dst), ".tmp-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := fn(tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		if _, serr := os.Stat(dst); serr == nil {
			return nil // another build filled it first
		}
		return err
	}
	return nil
}
