package recipe

import (
	"bufio"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
)

// modIndex is a kernel's modules.dep: each module file (relative to
// lib/modules/<release>) with the files it depends on, in file order.
type modIndex struct {
	files  []string            // in modules.dep order
	deps   map[string][]string // file -> files it needs
	byName map[string]string   // module name -> file
	// aliases of each file, when the index was built from the modules
	// themselves; nil when it was read from modules.dep.
	aliases map[string][]string
}

// modName is the module name of a module file: its base name without .ko
// (and a compression suffix), with - spelled _.
func modName(file string) string {
	base := path.Base(file)
	if i := strings.Index(base, ".ko"); i >= 0 {
		base = base[:i]
	}
	return normName(base)
}

func normName(name string) string { return strings.ReplaceAll(name, "-", "_") }

// parseModulesDep reads modules.dep ("file: dep dep ...").
func parseModulesDep(r io.Reader) (*modIndex, error) {
	idx := &modIndex{deps: map[string][]string{}, byName: map[string]string{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		file, deps, ok := strings.Cut(line, ":")
		if !ok || file == "" {
			return nil, fmt.Errorf("modules.dep:%d: no colon after the module file", n)
		}
		if _, dup := idx.deps[file]; dup {
			return nil, fmt.Errorf("modules.dep:%d: %s listed twice", n, file)
		}
		idx.files = append(idx.files, file)
		idx.deps[file] = strings.Fields(deps)
		idx.byName[modName(file)] = file
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading modules.dep: %w", err)
	}
	for _, f := range idx.files {
		for _, d := range idx.deps[f] {
			if _, ok := idx.deps[d]; !ok {
				return nil, fmt.Errorf("modules.dep: %s needs %s, which is not listed", f, d)
			}
		}
	}
	return idx, nil
}

// parseBuiltin reads modules.builtin (one module file per line) into a set
// of module names.
func parseBuiltin(r io.Reader) (map[string]bool, error) {
	set := map[string]bool{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			set[modName(line)] = true
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading modules.builtin: %w", err)
	}
	return set, nil
}

// modSelection is the outcome of resolving the wanted modules.
type modSelection struct {
	files   map[string]bool // module files to ship, dependencies included
	names   []string        // their module names, sorted
	builtin []string        // wanted modules that are built in, sorted
	missing []string        // optional modules the kernel lacks, sorted
}

// selectModules resolves wanted module names (a trailing "?" marks one
// optional) to the files to ship, following modules.dep. A module built into
// the kernel needs no file; a required module the kernel lacks is an error.
func (idx *modIndex) selectModules(wanted []string, builtin map[string]bool) (*modSelection, error) {
	sel := &modSelection{files: map[string]bool{}}
	var absent []string
	for _, w := range wanted {
		optional := strings.HasSuffix(w, "?")
		name := normName(strings.TrimSuffix(w, "?"))
		file, ok := idx.byName[name]
		switch {
		case ok:
			idx.addWithDeps(file, sel.files)
		case builtin[name]:
			sel.builtin = append(sel.builtin, name)
		case optional:
			sel.missing = append(sel.missing, name)
		default:
			absent = append(absent, name)
		}
	}
	if len(absent) > 0 {
		return nil, fmt.Errorf("kernel has no module %s (neither in modules.dep nor built in)", strings.Join(absent, ", "))
	}
	for f := range sel.files {
		sel.names = append(sel.names, modName(f))
	}
	for _, l := range [][]string{sel.names, sel.builtin, sel.missing} {
		sort.Strings(l)
	}
	return sel, nil
}

func (idx *modIndex) addWithDeps(file string, seen map[string]bool) {
	if seen[file] {
		return
	}
	seen[file] = true
	for _, d := range idx.deps[file] {
		idx.addWithDeps(d, seen)
	}
}

// filterDep writes the lines of modules.dep for the selected files, in the
// original order.
func (idx *modIndex) filterDep(sel *modSelection) []byte {
	var b strings.Builder
	for _, f := range idx.files {
		if !sel.files[f] {
			continue
		}
		b.WriteString(f + ":")
		for _, d := range idx.deps[f] {
			b.WriteString(" " + d)
		}
		b.WriteString("\n")
	}
	return []byte(b.String())
}

// filterLines keeps the lines of a modules.* file that keep says to.
// Comment lines are kept.
func filterLines(r io.Reader, keep func(line string) bool) ([]byte, error) {
	var b strings.Builder
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || keep(line) {
			b.WriteString(line + "\n")
		}
	}
	return []byte(b.String()), sc.Err()
}

// aliasFile writes modules.alias for the selected files, as depmod does.
func (idx *modIndex) aliasFile(sel *modSelection) []byte {
	var b strings.Builder
	b.WriteString("# Aliases extracted from modules themselves.\n")
	for _, f := range idx.files {
		if !sel.files[f] {
			continue
		}
		for _, a := range idx.aliases[f] {
			fmt.Fprintf(&b, "alias %s %s\n", a, modName(f))
		}
	}
	return []byte(b.String())
}

// keepOrder keeps modules.order lines naming a selected file.
func (sel *modSelection) keepOrder(line string) bool { return sel.files[strings.TrimSpace(line)] }

// keepAlias keeps modules.alias lines ("alias PATTERN module") for a
// selected module.
func (sel *modSelection) keepAlias(line string) bool {
	f := strings.Fields(line)
	if len(f) != 3 || f[0] != "alias" {
		return false
	}
	i := sort.SearchStrings(sel.names, normName(f[2]))
	return i < len(sel.names) && sel.names[i] == normName(f[2])
}
