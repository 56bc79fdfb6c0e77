package recipe

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// The files a kernel build script (kernel.build) leaves in its directory,
// besides KernelFile and KernelConfig.
const (
	builtRelease = "release"     // uname -r
	builtModules = "modules"     // lib/modules/<release>
	builtSource  = "source.json" // what went in
)

// addBuiltKernel runs the recipe's kernel build script, which builds the
// kernel or finds it in its own cache, and takes the kernel from the
// directory it prints last.
func (b *builder) addBuiltKernel(ctx context.Context, t *tree) error {
	dir, err := b.runKernelBuild(ctx)
	if err != nil {
		return err
	}
	rel, err := os.ReadFile(filepath.Join(dir, builtRelease))
	if err != nil {
		return fmt.Errorf("reading the built kernel: %w", err)
	}
	release := strings.TrimSpace(string(rel))
	if release == "" || strings.ContainsAny(release, "/ \n") {
		return fmt.Errorf("built kernel: bad release %q", release)
	}
	src, err := os.ReadFile(filepath.Join(dir, builtSource))
	if err != nil {
		return fmt.Errorf("reading the built kernel: %w", err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, src); err != nil {
		return fmt.Errorf("built kernel: %s: %w", builtSource, err)
	}
	mods, names, err := builtModuleTree(filepath.Join(dir, builtModules), "lib/modules/"+release)
	if err != nil {
		return err
	}
	var tarBuf bytes.Buffer
	if err := mods.writeTar(&tarBuf, b.epoch); err != nil {
		return err
	}
	b.kernel, b.kmodules, b.ksource = release, names, compact.String()
	b.logf("kernel: built %s", release)
	for _, e := range []entry{
		fileEntry(KernelFile, 0o644, filepath.Join(dir, KernelFile)),
		fileEntry(KernelConfig, 0o644, filepath.Join(dir, KernelConfig)),
		dataEntry(KernelTar, 0o644, tarBuf.Bytes()),
	} {
		if err := t.add(e); err != nil {
			return err
		}
	}
	return nil
}

// runKernelBuild runs the script from the module's root with the recipe's
// SOURCE_DATE_EPOCH and returns the directory it printed.
func (b *builder) runKernelBuild(ctx context.Context) (string, error) {
	mod, err := b.localModule(ctx)
	if err != nil {
		return "", err
	}
	script := filepath.Join(mod.dir, filepath.FromSlash(b.recipe.Kernel.Build))
	b.logf("kernel: %s", b.recipe.Kernel.Build)
	env := append(os.Environ(), fmt.Sprintf("SOURCE_DATE_EPOCH=%d", b.epoch.Unix()))
	out, err := b.run(ctx, mod.dir, env, script)
	if err != nil {
		return "", fmt.Errorf("building the kernel: %w", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	dir := strings.TrimSpace(lines[len(lines)-1])
	if !filepath.IsAbs(dir) {
		return "", fmt.Errorf("building the kernel: %s printed %q, want the absolute path of its output", b.recipe.Kernel.Build, dir)
	}
	return dir, nil
}

// builtModuleTree is the tree of kernel.tar: every file under dir, under
// prefix, and the names of the modules among them (never nil).
func builtModuleTree(dir, prefix string) (*tree, []string, error) {
	t := newTree()
	names := []string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s is not a regular file", p)
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if strings.Contains(d.Name(), ".ko") {
			names = append(names, moduleName(d.Name()))
		}
		return t.add(fileEntry(path.Join(prefix, filepath.ToSlash(rel)), 0o644, p))
	})
	if err != nil {
		return nil, nil, fmt.Errorf("reading the built kernel's modules: %w", err)
	}
	return t, names, nil
}

// moduleName is a module file's name without .ko and compression, dashes
// as underscores.
func moduleName(file string) string {
	base, _, _ := strings.Cut(file, ".ko")
	return strings.ReplaceAll(base, "-", "_")
}
