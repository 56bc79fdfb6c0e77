// Package kmod loads the kernel modules shipped under /lib/modules/<release>:
// every one of them, each after its dependencies, in a fixed order.
//
// Dependencies come from depmod's modules.dep when the build wrote one, and
// otherwise from each module's own .modinfo section ("depends="), so a root
// assembled without depmod still loads. u-root's kmodule is not used: it
// probes in parallel (no fixed order) and links three decompressors in;
// here the kernel decompresses (finit_module's MODULE_INIT_COMPRESSED_FILE)
// when it can.
package kmod

import (
	"bufio"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Module is one loadable module file.
type Module struct {
	// Name is the module name ("virtio_net"), dashes folded to underscores.
	Name string
	// Path is the module file, relative to the modules directory.
	Path string
	// Deps are the Paths of the modules it needs.
	Deps []string
}

// Name returns the module name of a module file path: its base name without
// ".ko" and a compression suffix, with dashes as underscores.
func Name(path string) string {
	base := filepath.Base(path)
	if i := strings.Index(base, ".ko"); i >= 0 {
		base = base[:i]
	}
	return strings.ReplaceAll(base, "-", "_")
}

// Read lists the modules in dir (a /lib/modules/<release> directory), from
// modules.dep if present and from the modules' .modinfo otherwise.
func Read(dir string) ([]Module, error) {
	f, err := os.Open(filepath.Join(dir, "modules.dep"))
	if errors.Is(err, fs.ErrNotExist) {
		return scan(dir)
	}
	if err != nil {
		return nil, fmt.Errorf("reading module dependencies: %w", err)
	}
	defer f.Close()
	return ParseDep(f)
}

// ParseDep parses depmod's modules.dep ("path: dep dep").
func ParseDep(r interface{ Read([]byte) (int, error) }) ([]Module, error) {
	var mods []Module
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		path, deps, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		path = strings.TrimSpace(path)
		mods = append(mods, Module{Name: Name(path), Path: path, Deps: strings.Fields(deps)})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("parsing modules.dep: %w", err)
	}
	return mods, nil
}

// scan finds every module file under dir and reads its dependencies from
// its .modinfo section.
func scan(dir string) ([]Module, error) {
	var mods []Module
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.Contains(d.Name(), ".ko") {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		mods = append(mods, Module{Name: Name(rel), Path: rel})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("finding modules: %w", err)
	}
	byName := make(map[string]string, len(mods))
	for _, m := range mods {
		byName[m.Name] = m.Path
	}
	for i, m := range mods {
		info, err := ModInfo(filepath.Join(dir, m.Path))
		if err != nil {
			return nil, err
		}
		for _, dep := range strings.Split(info["depends"], ",") {
			if p, ok := byName[strings.ReplaceAll(dep, "-", "_")]; ok && dep != "" {
				mods[i].Deps = append(mods[i].Deps, p)
			}
		}
	}
	return mods, nil
}

// ModInfo reads the key=value pairs of an uncompressed module's .modinfo
// section (for a key given more than once, the last value).
func ModInfo(path string) (map[string]string, error) {
	data, err := ModInfoSection(path)
	if err != nil {
		return nil, err
	}
	info := map[string]string{}
	for _, kv := range bytes.Split(data, []byte{0}) {
		if k, v, ok := strings.Cut(string(kv), "="); ok {
			info[k] = v
		}
	}
	return info, nil
}

// ModInfoSection returns the raw .modinfo section of an uncompressed module:
// NUL-separated key=value pairs, keys such as alias given more than once.
func ModInfoSection(path string) ([]byte, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading module info: %w", err)
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, fmt.Errorf("reading module info: %s has no .modinfo", path)
	}
	data, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf("reading module info of %s: %w", path, err)
	}
	return data, nil
}

// Order returns the module paths in load order: modules sorted by path,
// each preceded by its dependencies (depth first, each once). A dependency
// cycle or a missing dependency is reported, and the module skipped.
func Order(mods []Module) (order []string, problems []error) {
	byPath := make(map[string]Module, len(mods))
	for _, m := range mods {
		byPath[m.Path] = m
	}
	paths := make([]string, 0, len(mods))
	for _, m := range mods {
		paths = append(paths, m.Path)
	}
	slices.Sort(paths)
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
		m, ok := byPath[p]
		if !ok {
			return fmt.Errorf("module %s needs %s, which is missing", stack[len(stack)-1], p)
		}
		state[p] = visiting
		for _, d := range m.Deps {
			if err := visit(d, append(stack, p)); err != nil {
				state[p] = done
				return err
			}
		}
		state[p] = done
		order = append(order, p)
		return nil
	}
	for _, p := range paths {
		if err := visit(p, nil); err != nil {
			problems = append(problems, err)
		}
	}
	return order, problems
}
