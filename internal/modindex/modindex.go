// Package modindex reads a kernel's module index: the module files under a
// lib/modules/<release> directory and what each one needs. The builder
// (builder/recipe, which writes kernel.tar), the host (internal/host/kmod
// and stage0, which load modules) and the boot-test helpers read it here,
// with one size limit and one dependency walk.
//
// The index comes from depmod's modules.dep when there is one, and
// otherwise from the modules themselves (each one's .modinfo section, as
// depmod reads it), so a Debian kernel package, which runs depmod only when
// installed, can be read as it is shipped.
package modindex

import (
	"bufio"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// Limit is the most this package reads of one index file (modules.dep,
// modules.order) or one module's .modinfo section.
const Limit = 16 << 20

// Module is one loadable module file.
type Module struct {
	// Name is the module name ("virtio_net"), dashes folded to underscores.
	Name string
	// Path is the module file, slash-separated, relative to the modules
	// directory.
	Path string
	// Deps are the Paths of every module it needs, directly or not, in
	// depmod's order: loading them from last to first works.
	Deps []string
	// Aliases are the module's alias= patterns, when the index was read
	// from the modules themselves.
	Aliases []string
}

// Index is a kernel's module index.
type Index struct {
	// Modules in index order: modules.dep's, or for a scanned index
	// modules.order's, then by path.
	Modules []Module
	// Scanned says the index was read from the modules themselves (so
	// Aliases are filled in) rather than from modules.dep.
	Scanned bool

	byName map[string]int
	byPath map[string]int
	// unresolved are the depends= of a scanned index that name no module.
	unresolved []error
}

// Name returns the module name of a module file path: its base name without
// ".ko" and a compression suffix, with dashes as underscores.
func Name(file string) string {
	base := path.Base(filepath.ToSlash(file))
	if i := strings.Index(base, ".ko"); i >= 0 {
		base = base[:i]
	}
	return NormName(base)
}

// NormName spells a module name as the kernel does, dashes as underscores.
func NormName(name string) string { return strings.ReplaceAll(name, "-", "_") }

func newIndex(mods []Module, scanned bool) *Index {
	ix := &Index{Modules: mods, Scanned: scanned, byName: map[string]int{}, byPath: map[string]int{}}
	for i, m := range mods {
		ix.byName[m.Name] = i
		ix.byPath[m.Path] = i
	}
	return ix
}

// Lookup finds a module by name (dashes or underscores).
func (ix *Index) Lookup(name string) (Module, bool) {
	i, ok := ix.byName[NormName(name)]
	if !ok {
		return Module{}, false
	}
	return ix.Modules[i], true
}

// Read reads the index of dir (a lib/modules/<release> directory): its
// modules.dep if present, and the modules' .modinfo otherwise.
func Read(dir string) (*Index, error) {
	f, err := os.Open(filepath.Join(dir, "modules.dep"))
	if errors.Is(err, fs.ErrNotExist) {
		return Scan(dir)
	}
	if err != nil {
		return nil, fmt.Errorf("reading module dependencies: %w", err)
	}
	defer f.Close()
	return ParseDep(f)
}

// readLimited reads all of r, failing past Limit.
func readLimited(r io.Reader, what string) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, Limit+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", what, err)
	}
	if len(data) > Limit {
		return nil, fmt.Errorf("reading %s: larger than %d MiB", what, Limit>>20)
	}
	return data, nil
}

// ParseDep parses depmod's modules.dep ("file: dep dep ..."; blank lines
// and # comments skipped). A line without a colon or a file listed twice
// is an error; a dependency that is not listed is left for Check and the
// walks to report.
func ParseDep(r io.Reader) (*Index, error) {
	data, err := readLimited(r, "modules.dep")
	if err != nil {
		return nil, err
	}
	var mods []Module
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, Limit)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		file, deps, ok := strings.Cut(line, ":")
		if !ok || file == "" {
			return nil, fmt.Errorf("modules.dep:%d: no colon after the module file", n)
		}
		if seen[file] {
			return nil, fmt.Errorf("modules.dep:%d: %s listed twice", n, file)
		}
		seen[file] = true
		mods = append(mods, Module{Name: Name(file), Path: file, Deps: strings.Fields(deps)})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading modules.dep: %w", err)
	}
	return newIndex(mods, false), nil
}

// Check reports the first dependency that the index does not list. The
// walks pass over such a dependency of a scanned index (a host loads what
// it can); a build refuses it.
func (ix *Index) Check() error {
	if len(ix.unresolved) > 0 {
		return ix.unresolved[0]
	}
	for _, m := range ix.Modules {
		for _, d := range m.Deps {
			if _, ok := ix.byPath[d]; !ok {
				return fmt.Errorf("modules.dep: %s needs %s, which is not listed", m.Path, d)
			}
		}
	}
	return nil
}

// Order returns every module path in load order: modules sorted by path,
// each preceded by its dependencies (each once). A dependency cycle or a
// missing dependency is reported, and the module skipped.
func (ix *Index) Order() (order []string, problems []error) {
	paths := make([]string, 0, len(ix.Modules))
	for _, m := range ix.Modules {
		paths = append(paths, m.Path)
	}
	slices.Sort(paths)
	return ix.walk(paths)
}

// Closure returns the paths of the named modules and of everything they
// need, in load order (dependencies first, each once). Names the index
// does not hold (built into the kernel, or not in it) are returned in
// missing, in the order given; a cycle or a missing dependency is
// reported in problems and the module skipped.
func (ix *Index) Closure(names []string) (order, missing []string, problems []error) {
	var roots []string
	for _, n := range names {
		m, ok := ix.Lookup(n)
		if !ok {
			missing = append(missing, NormName(n))
			continue
		}
		roots = append(roots, m.Path)
	}
	order, problems = ix.walk(roots)
	return order, missing, problems
}

// walk visits roots depth first, each module's dependencies before it.
func (ix *Index) walk(roots []string) (order []string, problems []error) {
	const (
		visiting = 1
		done     = 2
	)
	state := map[string]int{}
	var visit func(p string, stack []string) error
	visit = func(p string, stack []string) error {
		switch state[p] {
		case done:
			return nil
		case visiting:
			return fmt.Errorf("module dependency cycle: %s", strings.Join(append(stack, p), " -> "))
		}
		i, ok := ix.byPath[p]
		if !ok {
			return fmt.Errorf("module %s needs %s, which is missing", stack[len(stack)-1], p)
		}
		state[p] = visiting
		for _, d := range ix.Modules[i].Deps {
			if err := visit(d, append(stack, p)); err != nil {
				state[p] = done
				return err
			}
		}
		state[p] = done
		order = append(order, p)
		return nil
	}
	for _, p := range roots {
		if err := visit(p, nil); err != nil {
			problems = append(problems, err)
		}
	}
	return order, problems
}

// Info is what a module's .modinfo section says about it.
type Info struct {
	Name    string   // name=, dashes as underscores ("" if absent)
	Depends []string // depends=, module names
	Aliases []string // alias= patterns, in order
	Fields  map[string]string
}

// ReadInfo reads the .modinfo section of an uncompressed module file.
func ReadInfo(file string) (Info, error) {
	data, err := InfoSection(file)
	if err != nil {
		return Info{}, err
	}
	return ParseInfo(data), nil
}

// ParseInfo parses a .modinfo section: NUL-separated key=value pairs, some
// keys (alias) given more than once. Fields holds each key's last value.
func ParseInfo(data []byte) Info {
	info := Info{Fields: map[string]string{}}
	for _, kv := range bytes.Split(data, []byte{0}) {
		k, v, ok := strings.Cut(string(kv), "=")
		if !ok {
			continue
		}
		info.Fields[k] = v
		switch k {
		case "name":
			info.Name = NormName(v)
		case "depends":
			info.Depends = nil
			for _, d := range strings.Split(v, ",") {
				if d != "" {
					info.Depends = append(info.Depends, NormName(d))
				}
			}
		case "alias":
			info.Aliases = append(info.Aliases, v)
		}
	}
	return info
}

// InfoSection returns the raw .modinfo section of an uncompressed module.
func InfoSection(file string) ([]byte, error) {
	f, err := elf.Open(file)
	if err != nil {
		return nil, fmt.Errorf("reading module info: %w", err)
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, fmt.Errorf("reading module info: %s has no .modinfo", file)
	}
	if sec.Size > Limit {
		return nil, fmt.Errorf("reading module info of %s: .modinfo larger than %d MiB", file, Limit>>20)
	}
	data, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf("reading module info of %s: %w", file, err)
	}
	return data, nil
}

// Scan builds the index of dir from the modules themselves, as depmod
// would: every .ko file, ordered as in modules.order and then by path, each
// with all it needs (read from .modinfo depends=, followed), listed so that
// loading them from last to first works. A compressed module is an error:
// its .modinfo cannot be read.
func Scan(dir string) (*Index, error) {
	var files []string
	err := fs.WalkDir(os.DirFS(dir), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
		case strings.HasSuffix(p, ".ko"):
			files = append(files, p)
		case strings.Contains(path.Base(p), ".ko."):
			return fmt.Errorf("module %s is compressed; only plain .ko files are supported", p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("finding modules: %w", err)
	}
	order, err := readOrder(filepath.Join(dir, "modules.order"))
	if err != nil {
		return nil, err
	}
	sort.SliceStable(files, func(i, j int) bool {
		oi, iok := order[files[i]]
		oj, jok := order[files[j]]
		if iok != jok {
			return iok
		}
		if iok && oi != oj {
			return oi < oj
		}
		return files[i] < files[j]
	})
	return scanned(dir, files)
}

// readOrder maps each file in modules.order to its line number; a missing
// file is an empty order.
func readOrder(name string) (map[string]int, error) {
	f, err := os.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]int{}, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := readLimited(f, "modules.order")
	if err != nil {
		return nil, err
	}
	m := map[string]int{}
	for i, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			m[l] = i
		}
	}
	return m, nil
}

// scanned reads the .modinfo of files (relative to dir, in index order) and
// fills in each module's dependencies, all of them, in depmod's order.
func scanned(dir string, files []string) (*Index, error) {
	mods := make([]Module, len(files))
	depends := make([][]string, len(files)) // direct, as module names
	for i, f := range files {
		info, err := ReadInfo(filepath.Join(dir, filepath.FromSlash(f)))
		if err != nil {
			return nil, err
		}
		name := info.Name
		if name == "" {
			name = Name(f)
		}
		mods[i] = Module{Name: name, Path: f, Aliases: info.Aliases}
		depends[i] = info.Depends
	}
	direct := newIndex(mods, true)
	var unresolved []error
	for i := range mods {
		for _, d := range depends[i] {
			m, ok := direct.Lookup(d)
			if !ok {
				unresolved = append(unresolved, fmt.Errorf("module %s needs %s, which the kernel does not have", files[i], d))
				continue
			}
			mods[i].Deps = append(mods[i].Deps, m.Path)
		}
	}
	// Follow the direct dependencies to all of them. walk's post-order
	// loads each after what it needs; modules.dep lists it the other way
	// round.
	all := make([][]string, len(mods))
	for i, m := range mods {
		post, problems := direct.walk(m.Deps)
		if len(problems) > 0 {
			return nil, problems[0]
		}
		post = slices.DeleteFunc(post, func(p string) bool { return p == m.Path })
		slices.Reverse(post)
		all[i] = post
	}
	for i := range mods {
		mods[i].Deps = all[i]
	}
	ix := newIndex(mods, true)
	ix.unresolved = unresolved
	return ix, nil
}
