package recipe

import (
	"bufio"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/bulkhead-dev/bulkhead/internal/modindex"
)

// modIndex is a kernel's module index (modules.dep, or read from the
// modules themselves), with what kernel.tar needs of it.
type modIndex struct{ *modindex.Index }

// parseModulesDep reads modules.dep ("file: dep dep ..."); every
// dependency must be listed.
func parseModulesDep(r io.Reader) (*modIndex, error) {
	ix, err := modindex.ParseDep(r)
	if err != nil {
		return nil, err
	}
	if err := ix.Check(); err != nil {
		return nil, err
	}
	return &modIndex{ix}, nil
}

// parseBuiltin reads modules.builtin (one module file per line) into a set
// of module names.
func parseBuiltin(r io.Reader) (map[string]bool, error) {
	set := map[string]bool{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			set[modindex.Name(line)] = true
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
	var found, absent []string
	for _, w := range wanted {
		optional := strings.HasSuffix(w, "?")
		name := modindex.NormName(strings.TrimSuffix(w, "?"))
		_, ok := idx.Lookup(name)
		switch {
		case ok:
			found = append(found, name)
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
	files, _, problems := idx.Closure(found)
	if len(problems) > 0 {
		return nil, problems[0]
	}
	for _, f := range files {
		sel.files[f] = true
		sel.names = append(sel.names, modindex.Name(f))
	}
	for _, l := range [][]string{sel.names, sel.builtin, sel.missing} {
		sort.Strings(l)
	}
	return sel, nil
}

// filterDep writes the lines of modules.dep for the selected files, in the
// original order.
func (idx *modIndex) filterDep(sel *modSelection) []byte {
	var b strings.Builder
	for _, m := range idx.Modules {
		if !sel.files[m.Path] {
			continue
		}
		b.WriteString(m.Path + ":")
		for _, d := range m.Deps {
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
	for _, m := range idx.Modules {
		if !sel.files[m.Path] {
			continue
		}
		for _, a := range m.Aliases {
			fmt.Fprintf(&b, "alias %s %s\n", a, modindex.Name(m.Path))
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
	name := modindex.NormName(f[2])
	i := sort.SearchStrings(sel.names, name)
	return i < len(sel.names) && sel.names[i] == name
}
