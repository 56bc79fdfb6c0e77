package recipe

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// GoInput records one Go program that went into an image.
type GoInput struct {
	Output  string `json:"output"`  // path in the image
	Package string `json:"package"` // import path
	Module  string `json:"module"`
	Version string `json:"version"` // module version, (devel) for this module
	CGO     bool   `json:"cgo,omitempty"`
	Tags    string `json:"tags,omitempty"`
}

// baseLdflags strip symbols and the build id, which would differ by machine.
const baseLdflags = "-s -w -buildid="

// goEnv is the environment of every go command: the caller's, with what
// changes the output pinned.
func (b *builder) goEnv(cgo bool, extra ...string) []string {
	c := "0"
	if cgo {
		c = "1"
	}
	env := append(os.Environ(), "CGO_ENABLED="+c, "GOOS=linux", "GOARCH=amd64",
		"GOTOOLCHAIN=local", "GOWORK=off", "GOFLAGS=", "GOAMD64=v1")
	return append(env, extra...)
}

// goVersion asks the go command for its version.
func (b *builder) goVersion(ctx context.Context) (string, error) {
	if b.goVer != "" {
		return b.goVer, nil
	}
	out, err := b.run(ctx, "", b.goEnv(false), "go", "env", "GOVERSION")
	if err != nil {
		return "", fmt.Errorf("finding the go version: %w", err)
	}
	b.goVer = strings.TrimSpace(string(out))
	return b.goVer, nil
}

// goProgram builds p, or takes it from the cache, and returns the binary's
// path and what went in.
func (b *builder) goProgram(ctx context.Context, p GoProgram) (string, GoInput, error) {
	in := GoInput{Output: p.Output, Package: p.ImportPath(), Module: p.Module, Version: p.Version,
		CGO: p.CGO, Tags: strings.Join(p.Tags, ",")}
	gover, err := b.goVersion(ctx)
	if err != nil {
		return "", in, err
	}
	var src string
	if p.Local() {
		mod, err := b.localModule(ctx)
		if err != nil {
			return "", in, err
		}
		in.Module, in.Version = mod.path, "(devel)"
		in.Package = mod.path + strings.TrimPrefix(p.Package, ".")
		if src, err = b.sourceHash(ctx, p); err != nil {
			return "", in, err
		}
	}
	key := cacheKey("go", p, gover, src)
	bin := filepath.Join(b.cacheDir, "go", key, filepath.Base(p.Output))
	if _, err := os.Stat(bin); err == nil {
		return bin, in, nil
	}
	err = b.fill(filepath.Join(b.cacheDir, "go", key), func(dir string) error {
		return b.goBuild(ctx, p, filepath.Join(dir, filepath.Base(p.Output)))
	})
	if err != nil {
		return "", in, fmt.Errorf("building %s: %w", in.Package, err)
	}
	return bin, in, nil
}

// goBuild compiles p to out.
func (b *builder) goBuild(ctx context.Context, p GoProgram, out string) error {
	flags := []string{"-trimpath", "-buildvcs=false", "-ldflags=" + strings.TrimSpace(baseLdflags+" "+p.Ldflags)}
	if len(p.Tags) > 0 {
		flags = append(flags, "-tags="+strings.Join(p.Tags, ","))
	}
	if p.Local() {
		mod, err := b.localModule(ctx)
		if err != nil {
			return err
		}
		args := append(append([]string{"build"}, flags...), "-o", out, p.Package)
		_, err = b.run(ctx, mod.dir, b.goEnv(p.CGO), "go", args...)
		return err
	}
	// go install pkg@version ignores any go.mod around it; build in an
	// empty directory all the same, and let GOBIN collect the one binary.
	gobin, err := os.MkdirTemp(filepath.Dir(out), "gobin-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(gobin)
	args := append(append([]string{"install"}, flags...), p.ImportPath()+"@"+p.Version)
	env := b.goEnv(p.CGO, "GOBIN="+gobin, "GOFLAGS=-mod=mod")
	if _, err := b.run(ctx, gobin, env, "go", args...); err != nil {
		return err
	}
	ents, err := os.ReadDir(gobin)
	if err != nil {
		return err
	}
	if len(ents) != 1 {
		return fmt.Errorf("go install left %d files, want 1", len(ents))
	}
	return os.Rename(filepath.Join(gobin, ents[0].Name()), out)
}

// module is the Go module holding the recipes.
type module struct{ path, dir string }

// localModule finds the module holding the recipe directory.
func (b *builder) localModule(ctx context.Context) (module, error) {
	if b.mod.dir != "" {
		return b.mod, nil
	}
	out, err := b.run(ctx, b.recipe.Dir, b.goEnv(false), "go", "list", "-m", "-f", "{{.Path}} {{.Dir}}")
	if err != nil {
		return module{}, fmt.Errorf("finding the module of %s: %w", b.recipe.Dir, err)
	}
	p, d, ok := strings.Cut(strings.TrimSpace(string(out)), " ")
	if !ok || d == "" {
		return module{}, fmt.Errorf("recipe %s is not inside a Go module", b.recipe.Dir)
	}
	b.mod = module{path: p, dir: d}
	return b.mod, nil
}

// sourceHash hashes every file of this module that p's build reads: the
// sources of each package of the module it imports, go.mod and go.sum.
// Dependencies outside the module are pinned by go.sum.
func (b *builder) sourceHash(ctx context.Context, p GoProgram) (string, error) {
	mod, err := b.localModule(ctx)
	if err != nil {
		return "", err
	}
	args := []string{"list", "-deps", "-json=ImportPath,Dir,Module,GoFiles,CgoFiles,SFiles,CFiles,HFiles,EmbedFiles,SysoFiles"}
	if len(p.Tags) > 0 {
		args = append(args, "-tags="+strings.Join(p.Tags, ","))
	}
	out, err := b.run(ctx, mod.dir, b.goEnv(p.CGO), "go", append(args, p.Package)...)
	if err != nil {
		return "", fmt.Errorf("listing the sources of %s: %w", p.Package, err)
	}
	h := sha256.New()
	for _, f := range []string{"go.mod", "go.sum"} {
		if err := hashFile(h, mod.dir, f); err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var pkg listedPackage
		if err := dec.Decode(&pkg); err != nil {
			return "", fmt.Errorf("reading go list output: %w", err)
		}
		if pkg.Module == nil || !pkg.Module.Main {
			continue
		}
		fmt.Fprintf(h, "package %s\n", pkg.ImportPath)
		for _, f := range pkg.files() {
			if err := hashFile(h, pkg.Dir, f); err != nil {
				return "", err
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

type listedPackage struct {
	ImportPath                                                       string
	Dir                                                              string
	Module                                                           *struct{ Main bool }
	GoFiles, CgoFiles, SFiles, CFiles, HFiles, EmbedFiles, SysoFiles []string
}

func (p listedPackage) files() []string {
	var fs []string
	for _, l := range [][]string{p.GoFiles, p.CgoFiles, p.SFiles, p.CFiles, p.HFiles, p.EmbedFiles, p.SysoFiles} {
		fs = append(fs, l...)
	}
	return fs
}

// hashFile writes name and the sha256 of dir/name to h.
func hashFile(h io.Writer, dir, name string) error {
	f, err := os.Open(filepath.Join(dir, name))
	if err != nil {
		return err
	}
	defer f.Close()
	fh := sha256.New()
	if _, err := io.Copy(fh, bufio.NewReader(f)); err != nil {
		return err
	}
	_, err = fmt.Fprintf(h, "%s %x\n", name, fh.Sum(nil))
	return err
}

// cacheKey hashes the JSON of parts into a cache directory name.
func cacheKey(parts ...any) string {
	b, err := json.Marshal(parts)
	if err != nil {
		panic(err) // only plain values are passed
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:16])
}
