package recipe

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// FileName is the name of a recipe inside its directory.
const FileName = "image.yml"

// Repository is the store repository every component image is named under.
const Repository = "bulkhead"

// Recipe says how to build one component image.
type Recipe struct {
	// Name is the image's short name: the image is stored as
	// bulkhead/<name>:<tag>.
	Name string `yaml:"name"`
	Tag  string `yaml:"tag"`
	// Go programs to build into the image.
	Go []GoProgram `yaml:"go"`
	// Debian packages to take files from.
	Debian []DebianFiles `yaml:"debian"`
	// Kernel, if set, makes this a kernel image: /kernel, /kernel.tar and
	// /kernel.config, LinuxKit's layout.
	Kernel *Kernel `yaml:"kernel"`
	// Files are static files, directories and symlinks.
	Files []File `yaml:"files"`
	// Config is the image config.
	Config Config `yaml:"config"`

	// Dir is the directory holding the recipe; file sources are relative
	// to it.
	Dir string `yaml:"-"`
	// File is the recipe's path as given to Load, for messages.
	File string `yaml:"-"`
}

// GoProgram is one Go program built into the image.
type GoProgram struct {
	// Package is the import path of the main package. Without Module it
	// must start with "./" and is a package of the module holding the
	// recipe (./cmd/init). With Module it is a full import path, or a path
	// relative to the module ("./cmd/containerd").
	Package string `yaml:"package"`
	// Module and Version name a module to build from (go install
	// package@version), e.g. github.com/opencontainers/runc and v1.5.3.
	Module  string `yaml:"module"`
	Version string `yaml:"version"`
	// Output is the absolute path of the binary in the image.
	Output string `yaml:"output"`
	// CGO turns cgo on (CGO_ENABLED=1); it is off by default.
	CGO bool `yaml:"cgo"`
	// Tags are build tags.
	Tags []string `yaml:"tags"`
	// Ldflags are added after bulkhead's own "-s -w -buildid=".
	Ldflags string `yaml:"ldflags"`
}

// Local reports whether p is a package of the module holding the recipe.
func (p GoProgram) Local() bool { return p.Module == "" }

// ImportPath is p's full import path; for a local package it is relative
// ("./cmd/init").
func (p GoProgram) ImportPath() string {
	if p.Local() || !strings.HasPrefix(p.Package, "./") && p.Package != "." {
		return p.Package
	}
	return path.Join(p.Module, p.Package)
}

// DebianFiles takes files from one Debian package.
type DebianFiles struct {
	// Package is the binary package name.
	Package string `yaml:"package"`
	// Version pins a version; empty means apt's candidate.
	Version string `yaml:"version"`
	// SHA256 pins the .deb of Version (64 hex digits); `bulkhead image
	// bump` moves Version and SHA256 to apt's candidate.
	SHA256 string `yaml:"sha256"`
	// Paths are files or directories of the package copied to the same
	// place in the image ("/usr/share/zoneinfo/UTC").
	Paths []string `yaml:"paths"`
}

// Kernel takes a kernel from a Debian kernel package, or from a build
// script of this module.
type Kernel struct {
	// Build, instead of Package, is a script of the module holding the
	// recipe (./kernel/build) that builds a kernel, or finds it in its own
	// cache, and prints the directory holding it: kernel, kernel.config,
	// release, modules/ (lib/modules/<release>) and source.json (what went
	// in, recorded as an annotation).
	Build string `yaml:"build"`
	// Package is a kernel image package or its metapackage
	// (linux-image-cloud-amd64); a metapackage is resolved to the versioned
	// package it depends on.
	Package string `yaml:"package"`
	// Version pins the version of Package; empty means apt's candidate.
	Version string `yaml:"version"`
	// SHA256 pins the .deb of Package=Version.
	SHA256 string `yaml:"sha256"`
	// Follows is the metapackage (linux-image-cloud-amd64) whose kernel
	// `bulkhead image bump` moves a pinned versioned Package to.
	Follows string `yaml:"follows"`
	// Modules the host needs; their dependencies (modules.dep) come along.
	// A name ending in "?" is optional: it is skipped if the kernel has no
	// such module. A module built into the kernel needs nothing.
	Modules []string `yaml:"modules"`
}

// File is one static file, directory or symlink in the image.
type File struct {
	// Path is absolute.
	Path string `yaml:"path"`
	// Exactly one of Contents, Source, Directory and Symlink.
	Contents  *string `yaml:"contents"`
	Source    string  `yaml:"source"` // relative to the recipe directory
	Directory bool    `yaml:"directory"`
	Symlink   string  `yaml:"symlink"`
	// Mode in octal; 0644 for files, 0755 for directories by default.
	Mode *Mode `yaml:"mode"`
}

// Mode is a file mode written in octal ("0755", "1777").
type Mode uint32

// UnmarshalYAML reads the mode as octal whatever YAML thinks of it.
func (m *Mode) UnmarshalYAML(n *yaml.Node) error {
	v, err := strconv.ParseUint(strings.TrimPrefix(n.Value, "0o"), 8, 32)
	if err != nil || v > 0o7777 {
		return &posError{n.Line, n.Column, fmt.Sprintf("mode %q is not an octal file mode", n.Value)}
	}
	*m = Mode(v)
	return nil
}

// Config is the image config.
type Config struct {
	Entrypoint []string          `yaml:"entrypoint"`
	Cmd        []string          `yaml:"cmd"`
	Env        []string          `yaml:"env"`
	WorkingDir string            `yaml:"workdir"`
	User       string            `yaml:"user"`
	Labels     map[string]string `yaml:"labels"`
	// LinuxKit is written, as JSON, to the org.mobyproject.config label:
	// the image's own runtime defaults (capabilities, binds, ...) as
	// LinuxKit reads them.
	LinuxKit map[string]any `yaml:"linuxkit"`
}

// Ref is the store name of the image: bulkhead/<name>:<tag>.
func (r *Recipe) Ref() string { return Repository + "/" + r.Name + ":" + r.Tag }

// Load reads the recipe at path: an image.yml file or the directory
// holding one.
func Load(p string) (*Recipe, error) {
	if st, err := os.Stat(p); err == nil && st.IsDir() {
		p = filepath.Join(p, FileName)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("reading recipe: %w", err)
	}
	r, err := Parse(p, b)
	if err != nil {
		return nil, err
	}
	r.Dir = filepath.Dir(p)
	return r, nil
}

// Parse parses a recipe; file names it in errors. Problems are reported as
// file:line:col: message, all of them at once.
func Parse(file string, b []byte) (*Recipe, error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	p := &parser{file: file, pos: map[string]*yaml.Node{}}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	p.pos[""] = root
	p.checkKeys(root, recipeType, "")
	if len(p.errs) > 0 {
		return nil, p.err()
	}
	r := &Recipe{File: file}
	if err := root.Decode(r); err != nil {
		return nil, typeErr(file, err)
	}
	p.validate(r)
	if len(p.errs) > 0 {
		return nil, p.err()
	}
	return r, nil
}

// posError is an error at a place in the recipe.
type posError struct {
	line, col int
	msg       string
}

func (e *posError) Error() string { return fmt.Sprintf("%d:%d: %s", e.line, e.col, e.msg) }

// typeErr rewrites yaml.v3's "line N: ..." messages as "file:N: ...".
func typeErr(file string, err error) error {
	var pe *posError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s:%w", file, pe)
	}
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return fmt.Errorf("%s: %w", file, err)
	}
	msgs := make([]string, len(te.Errors))
	for i, m := range te.Errors {
		msgs[i] = lineRE.ReplaceAllString(m, file+":$1:")
	}
	return errors.New(strings.Join(msgs, "\n"))
}

var lineRE = regexp.MustCompile(`^line (\d+):`)

var (
	nameRE = regexp.MustCompile(`^[a-z0-9]+([._-][a-z0-9]+)*$`)
	tagRE  = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	// debRE is a Debian package name.
	debRE = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+$`)
)

// validate checks what the YAML types cannot.
func (p *parser) validate(r *Recipe) {
	if !nameRE.MatchString(r.Name) {
		p.errorf("name", "name %q must be lower case letters, digits and . _ -", r.Name)
	}
	if !tagRE.MatchString(r.Tag) {
		p.errorf("tag", "tag %q is not a valid image tag", r.Tag)
	}
	if len(r.Go)+len(r.Debian)+len(r.Files) == 0 && r.Kernel == nil {
		p.errorf("", "recipe builds nothing: add go, debian, kernel or files")
	}
	for i, g := range r.Go {
		p.validateGo(fmt.Sprintf("go[%d]", i), g)
	}
	for i, d := range r.Debian {
		at := fmt.Sprintf("debian[%d]", i)
		p.validateDeb(at, d.Package)
		p.validatePin(at, d.Version, d.SHA256)
		if len(d.Paths) == 0 {
			p.errorf(at, "paths: name at least one file or directory of %s", d.Package)
		}
		for j, q := range d.Paths {
			p.validatePath(fmt.Sprintf("%s.paths[%d]", at, j), q)
		}
	}
	if k := r.Kernel; k != nil && k.Build != "" {
		p.validateKernelBuild(k)
	} else if k != nil {
		p.validateDeb("kernel", k.Package)
		p.validatePin("kernel", k.Version, k.SHA256)
		if k.SHA256 != "" && !versionedKernel.MatchString(k.Package) {
			p.errorf("kernel.sha256", "sha256 pins a linux-image-<version> package, not the metapackage %s", k.Package)
		}
		if k.Follows != "" {
			p.validateDeb("kernel.follows", k.Follows)
			if !versionedKernel.MatchString(k.Package) || k.Version == "" {
				p.errorf("kernel.follows", "follows needs package pinned to a linux-image-<version> package and its version")
			}
		}
		for i, m := range k.Modules {
			if strings.TrimSuffix(m, "?") == "" || strings.ContainsAny(m, "/ ") {
				p.errorf(fmt.Sprintf("kernel.modules[%d]", i), "%q is not a module name", m)
			}
		}
	}
	for i, f := range r.Files {
		p.validateFile(fmt.Sprintf("files[%d]", i), f)
	}
}

func (p *parser) validateKernelBuild(k *Kernel) {
	if k.Package != "" || k.Version != "" || k.SHA256 != "" || k.Follows != "" || len(k.Modules) > 0 {
		p.errorf("kernel.build", "build takes no package, version, sha256, follows or modules")
	}
	rel := strings.TrimPrefix(k.Build, "./")
	if !strings.HasPrefix(k.Build, "./") || !filepath.IsLocal(rel) || path.Clean(rel) != rel {
		p.errorf("kernel.build", "build %q must be a path inside this module starting with ./", k.Build)
	}
}

func (p *parser) validateGo(at string, g GoProgram) {
	switch {
	case g.Package == "":
		p.errorf(at, "package is required")
	case g.Local() && g.Version != "":
		p.errorf(at+".version", "version needs module")
	case g.Local() && !strings.HasPrefix(g.Package, "./"):
		p.errorf(at+".package", "package %q: a package of this module starts with ./ (or set module and version)", g.Package)
	case !g.Local() && g.Version == "":
		p.errorf(at+".module", "module %s needs a version", g.Module)
	case !g.Local() && !strings.HasPrefix(g.ImportPath(), g.Module):
		p.errorf(at+".package", "package %q is not in module %s", g.Package, g.Module)
	}
	p.validatePath(at+".output", g.Output)
}

func (p *parser) validateDeb(at, name string) {
	if !debRE.MatchString(name) {
		p.errorf(at+".package", "package %q is not a Debian package name", name)
	}
}

var sha256RE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// validatePin checks a version and sha256 pin: a sha256 pins a version.
func (p *parser) validatePin(at, version, sum string) {
	switch {
	case sum != "" && version == "":
		p.errorf(at+".sha256", "sha256 pins a version: set version too")
	case sum != "" && !sha256RE.MatchString(sum):
		p.errorf(at+".sha256", "sha256 %q is not 64 lower-case hex digits", sum)
	}
}

func (p *parser) validatePath(at, q string) {
	if !path.IsAbs(q) || path.Clean(q) != q || q == "/" {
		p.errorf(at, "path %q must be absolute and clean", q)
	}
}

func (p *parser) validateFile(at string, f File) {
	p.validatePath(at+".path", f.Path)
	n := 0
	for _, set := range []bool{f.Contents != nil, f.Source != "", f.Directory, f.Symlink != ""} {
		if set {
			n++
		}
	}
	if n != 1 {
		p.errorf(at, "exactly one of contents, source, directory and symlink")
	}
	if f.Source != "" && (filepath.IsAbs(f.Source) || !filepath.IsLocal(f.Source)) {
		p.errorf(at+".source", "source %q must be a path inside the recipe directory", f.Source)
	}
}
