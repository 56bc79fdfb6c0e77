package recipe

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"

	"github.com/bulkhead-dev/bulkhead/internal/modindex"
)

// kernelFormat changes when the layout of the kernel cache entries does.
const kernelFormat = 1

// The files of a kernel image, as LinuxKit names them.
const (
	KernelFile   = "kernel"        // the bzImage
	KernelTar    = "kernel.tar"    // lib/modules/<release>/...
	KernelConfig = "kernel.config" // the kernel's .config
)

// versionedKernel is a kernel package proper, not a metapackage.
var versionedKernel = regexp.MustCompile(`^linux-image-[0-9]`)

// moduleFiles are the index files copied into kernel.tar as they are;
// modules.dep, modules.order and modules.alias are filtered.
var moduleFiles = []string{"modules.builtin", "modules.builtin.modinfo"}

func (b *builder) addKernel(ctx context.Context, t *tree) error {
	k := b.recipe.Kernel
	if k == nil {
		return nil
	}
	if k.Build != "" {
		return b.addBuiltKernel(ctx, t)
	}
	name, version := k.Package, k.Version
	if version == "" || !versionedKernel.MatchString(name) {
		pkg, err := b.kernelPackage(ctx, k)
		if err != nil {
			return err
		}
		name, version = pkg.name, pkg.version
	}
	b.logf("kernel: %s=%s", name, version)
	deb, in, err := b.deb(ctx, name, version, k.SHA256)
	if err != nil {
		return err
	}
	key := cacheKey("kernel", kernelFormat, in.SHA256, k.Modules, b.epoch.Unix())
	dir := filepath.Join(b.cacheDir, "kernel", key)
	if _, err := os.Stat(filepath.Join(dir, "modules.json")); err != nil {
		if err := b.fill(dir, func(tmp string) error { return b.extractKernel(ctx, deb, tmp) }); err != nil {
			return fmt.Errorf("extracting the kernel from %s: %w", name, err)
		}
	}
	if err := b.readKernelInfo(dir); err != nil {
		return err
	}
	for _, f := range []string{KernelFile, KernelTar, KernelConfig} {
		if err := t.add(fileEntry(f, 0o644, filepath.Join(dir, f))); err != nil {
			return err
		}
	}
	return nil
}

// kernelPackage resolves a metapackage (linux-image-cloud-amd64) to the
// versioned kernel package it depends on.
func (b *builder) kernelPackage(ctx context.Context, k *Kernel) (debPackage, error) {
	d, err := b.aptShow(ctx, k.Package, k.Version)
	if err != nil || versionedKernel.MatchString(d.name) {
		return d, err
	}
	for _, dep := range d.depends {
		if versionedKernel.MatchString(dep) {
			return b.aptShow(ctx, dep, "")
		}
	}
	return debPackage{}, fmt.Errorf("%s=%s depends on no linux-image-<version> package", d.name, d.version)
}

// kernelInfo is what the cache keeps next to the kernel files.
type kernelInfo struct {
	Release string   `json:"release"`
	Modules []string `json:"modules"`
}

func (b *builder) readKernelInfo(dir string) error {
	j, err := os.ReadFile(filepath.Join(dir, "modules.json"))
	if err != nil {
		return err
	}
	var info kernelInfo
	if err := json.Unmarshal(j, &info); err != nil {
		return fmt.Errorf("reading kernel cache entry: %w", err)
	}
	b.kernel, b.kmodules = info.Release, info.Modules
	return nil
}

// extractKernel unpacks the kernel package and writes the kernel, its
// config, the modules tarball and modules.json into out.
func (b *builder) extractKernel(ctx context.Context, deb, out string) error {
	root, err := b.extractDeb(ctx, deb)
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	modRoot, release, err := findModules(root)
	if err != nil {
		return err
	}
	for _, c := range [][2]string{{"vmlinuz-" + release, KernelFile}, {"config-" + release, KernelConfig}} {
		if err := copyFile(filepath.Join(root, "boot", c[0]), filepath.Join(out, c[1])); err != nil {
			return err
		}
	}
	mods, err := moduleTree(filepath.Join(modRoot, release), "lib/modules/"+release, b.recipe.Kernel.Modules)
	if err != nil {
		return err
	}
	if err := writeTarFile(filepath.Join(out, KernelTar), mods.tree, b); err != nil {
		return err
	}
	j, err := json.Marshal(kernelInfo{Release: release, Modules: mods.sel.names})
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(out, "modules.json"), j, 0o644)
}

// findModules finds lib/modules/<release> in an unpacked kernel package.
func findModules(root string) (dir, release string, err error) {
	for _, d := range []string{"lib/modules", "usr/lib/modules"} {
		ents, err := os.ReadDir(filepath.Join(root, d))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", "", err
		}
		if len(ents) != 1 || !ents[0].IsDir() {
			return "", "", fmt.Errorf("%s holds %d entries, want one kernel release", d, len(ents))
		}
		return filepath.Join(root, d), ents[0].Name(), nil
	}
	return "", "", errors.New("package has no lib/modules")
}

// modules is a kernel.tar in the making.
type modules struct {
	tree *tree
	sel  *modSelection
}

// moduleTree builds the tree of kernel.tar from the module directory dir of
// one release: the wanted modules with their dependencies, under prefix,
// with modules.dep, modules.order and modules.alias filtered to them.
func moduleTree(dir, prefix string, wanted []string) (*modules, error) {
	idx, err := loadIndex(dir)
	if err != nil {
		return nil, err
	}
	builtin, err := parseFile(filepath.Join(dir, "modules.builtin"), parseBuiltin)
	if err != nil {
		return nil, err
	}
	sel, err := idx.selectModules(wanted, builtin)
	if err != nil {
		return nil, err
	}
	t := newTree()
	for f := range sel.files {
		if err := t.add(fileEntry(path.Join(prefix, f), 0o644, filepath.Join(dir, filepath.FromSlash(f)))); err != nil {
			return nil, err
		}
	}
	order, err := parseFile(filepath.Join(dir, "modules.order"), func(r io.Reader) ([]byte, error) { return filterLines(r, sel.keepOrder) })
	if err != nil {
		return nil, err
	}
	alias := idx.aliasFile(sel)
	if !idx.Scanned {
		alias, err = parseFile(filepath.Join(dir, "modules.alias"), func(r io.Reader) ([]byte, error) { return filterLines(r, sel.keepAlias) })
		if err != nil {
			return nil, err
		}
	}
	files := [][2]any{{"modules.dep", idx.filterDep(sel)}, {"modules.order", order}, {"modules.alias", alias}}
	for _, name := range moduleFiles {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		files = append(files, [2]any{name, data})
	}
	for _, f := range files {
		if err := t.add(dataEntry(path.Join(prefix, f[0].(string)), 0o644, f[1].([]byte))); err != nil {
			return nil, err
		}
	}
	return &modules{tree: t, sel: sel}, nil
}

// loadIndex reads modules.dep, or builds the index from the modules
// themselves when the package ships none.
func loadIndex(dir string) (*modIndex, error) {
	idx, err := parseFile(filepath.Join(dir, "modules.dep"), parseModulesDep)
	if errors.Is(err, fs.ErrNotExist) {
		ix, err := modindex.Scan(dir)
		if err != nil {
			return nil, err
		}
		if err := ix.Check(); err != nil {
			return nil, err
		}
		return &modIndex{ix}, nil
	}
	return idx, err
}

func parseFile[T any](name string, parse func(io.Reader) (T, error)) (T, error) {
	f, err := os.Open(name)
	if err != nil {
		var zero T
		return zero, err
	}
	defer f.Close()
	v, err := parse(f)
	if err != nil {
		return v, fmt.Errorf("%s: %w", filepath.Base(name), err)
	}
	return v, nil
}

// writeTarFile writes t as a reproducible tar file.
func writeTarFile(name string, t *tree, b *builder) error {
	var buf bytes.Buffer
	if err := t.writeTar(&buf, b.epoch); err != nil {
		return err
	}
	return os.WriteFile(name, buf.Bytes(), 0o644)
}

func copyFile(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, data, 0o644)
}
