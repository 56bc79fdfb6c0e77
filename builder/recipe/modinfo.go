package recipe

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/bulkhead-dev/bulkhead/internal/host/kmod"
)

// modinfo is what a module's .modinfo section says about it.
type modinfo struct {
	name    string
	depends []string // module names
	aliases []string
}

// readModinfo reads the .modinfo section of an uncompressed module.
func readModinfo(file string) (modinfo, error) {
	data, err := kmod.ModInfoSection(file)
	if err != nil {
		return modinfo{}, err
	}
	return parseModinfo(data), nil
}

// parseModinfo reads NUL-separated key=value pairs.
func parseModinfo(data []byte) modinfo {
	var mi modinfo
	for _, kv := range bytes.Split(data, []byte{0}) {
		k, v, ok := strings.Cut(string(kv), "=")
		if !ok {
			continue
		}
		switch k {
		case "name":
			mi.name = normName(v)
		case "depends":
			for _, d := range strings.Split(v, ",") {
				if d != "" {
					mi.depends = append(mi.depends, normName(d))
				}
			}
		case "alias":
			mi.aliases = append(mi.aliases, v)
		}
	}
	return mi
}

// scanModules builds the module index of dir (lib/modules/<release>) from
// the modules themselves, as depmod would: for a kernel package that ships
// no modules.dep (Debian's run depmod when installed). Files are ordered as
// in modules.order, then by path; each file's dependencies are all it needs,
// directly or not, listed so that loading them from last to first works.
func scanModules(dir string) (*modIndex, error) {
	var files []string
	err := fs.WalkDir(os.DirFS(dir), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch {
		case strings.HasSuffix(p, ".ko"):
			files = append(files, p)
		case strings.Contains(filepath.Base(p), ".ko."):
			return fmt.Errorf("module %s is compressed; only plain .ko files are supported", p)
		}
		return nil
	})
	if err != nil {
		return nil, err
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
	return indexModules(dir, files)
}

// readOrder maps each file in modules.order to its line number; a missing
// file is an empty order.
func readOrder(name string) (map[string]int, error) {
	b, err := os.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]int{}, nil
	}
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

func indexModules(dir string, files []string) (*modIndex, error) {
	idx := &modIndex{deps: map[string][]string{}, byName: map[string]string{}, aliases: map[string][]string{}}
	infos := map[string]modinfo{}
	nameOf := map[string]string{}
	for _, f := range files {
		mi, err := readModinfo(filepath.Join(dir, filepath.FromSlash(f)))
		if err != nil {
			return nil, err
		}
		if mi.name == "" {
			mi.name = modName(f)
		}
		infos[mi.name] = mi
		idx.files = append(idx.files, f)
		idx.byName[mi.name] = f
		idx.aliases[f] = mi.aliases
		nameOf[f] = mi.name
	}
	for _, f := range idx.files {
		var post []string
		seen := map[string]bool{}
		var visit func(name string) error
		visit = func(name string) error {
			for _, d := range infos[name].depends {
				if seen[d] {
					continue
				}
				seen[d] = true
				if _, ok := idx.byName[d]; !ok {
					return fmt.Errorf("module %s needs %s, which the kernel does not have", f, d)
				}
				if err := visit(d); err != nil {
					return err
				}
				post = append(post, idx.byName[d])
			}
			return nil
		}
		if err := visit(nameOf[f]); err != nil {
			return nil, err
		}
		// post is in load order; modules.dep lists it the other way round.
		deps := make([]string, len(post))
		for i, d := range post {
			deps[len(post)-1-i] = d
		}
		idx.deps[f] = deps
	}
	return idx, nil
}
