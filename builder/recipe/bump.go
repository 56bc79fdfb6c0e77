package recipe

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"
)

// Pin is one pinned Debian input of a recipe, before and after a bump.
type Pin struct {
	Recipe              string // the recipe file
	Package, OldPackage string // the kernel's package changes with its ABI
	Version, OldVersion string
	SHA256, OldSHA256   string
}

// Changed reports whether the bump moved the pin.
func (p Pin) Changed() bool {
	return p.Package != p.OldPackage || p.Version != p.OldVersion || p.SHA256 != p.OldSHA256
}

// AptCache runs apt-cache with args; Bump asks it for candidates.
type AptCache func(ctx context.Context, args ...string) ([]byte, error)

// SystemAptCache runs the apt-cache of this machine.
func SystemAptCache(ctx context.Context, args ...string) ([]byte, error) {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "apt-cache", args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("apt-cache %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// Bump moves every pin of the recipe at path (an image.yml or its
// directory) to apt's candidate: each debian entry with a version, and a
// kernel with follows to the versioned package its metapackage depends on
// now. It rewrites only the pinned values, keeping comments and layout
// (a new file renamed into place), and returns every pin, moved or not.
func Bump(ctx context.Context, path string, apt AptCache) ([]Pin, error) {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		path = filepath.Join(path, FileName)
	}
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading recipe: %w", err)
	}
	if _, err := Parse(path, src); err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var pins []Pin
	var edits []edit
	for _, e := range pinEntries(doc.Content[0]) {
		pin, ed, err := bumpEntry(ctx, apt, e)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, e.pkg.Line, err)
		}
		pin.Recipe = path
		pins = append(pins, pin)
		edits = append(edits, ed...)
	}
	if len(edits) == 0 {
		return pins, nil
	}
	out, err := applyEdits(src, edits)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if _, err := Parse(path, out); err != nil {
		return nil, fmt.Errorf("bumped recipe does not parse (left unchanged): %w", err)
	}
	return pins, writeAtomic(path, out)
}

// pinEntry is one pinned input: its mapping's package, version, sha256
// and (for a kernel) follows value nodes.
type pinEntry struct {
	pkg, version, sha256, follows *yaml.Node
}

func pinEntries(root *yaml.Node) []pinEntry {
	var out []pinEntry
	if k := mapValue(root, "kernel"); k != nil && mapValue(k, "follows") != nil {
		out = append(out, entryOf(k))
	}
	if d := mapValue(root, "debian"); d != nil && d.Kind == yaml.SequenceNode {
		for _, m := range d.Content {
			if mapValue(m, "version") != nil {
				out = append(out, entryOf(m))
			}
		}
	}
	return out
}

func entryOf(m *yaml.Node) pinEntry {
	return pinEntry{pkg: mapValue(m, "package"), version: mapValue(m, "version"),
		sha256: mapValue(m, "sha256"), follows: mapValue(m, "follows")}
}

func mapValue(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// bumpEntry asks apt for the entry's candidate and returns the pin and the
// edits that write it.
func bumpEntry(ctx context.Context, apt AptCache, e pinEntry) (Pin, []edit, error) {
	if e.sha256 == nil {
		return Pin{}, nil, errors.New("a pinned version needs its sha256 too (add sha256: with any value, then bump)")
	}
	pin := Pin{OldPackage: e.pkg.Value, OldVersion: e.version.Value, OldSHA256: e.sha256.Value, Package: e.pkg.Value}
	if e.follows != nil {
		meta, err := aptStanza(ctx, apt, e.follows.Value)
		if err != nil {
			return Pin{}, nil, err
		}
		pin.Package = ""
		for _, dep := range meta.depends {
			if versionedKernel.MatchString(dep) {
				pin.Package = dep
				break
			}
		}
		if pin.Package == "" {
			return Pin{}, nil, fmt.Errorf("%s=%s depends on no linux-image-<version> package", meta.name, meta.version)
		}
	}
	d, err := aptStanza(ctx, apt, pin.Package)
	if err != nil {
		return Pin{}, nil, err
	}
	if d.sha256 == "" {
		return Pin{}, nil, fmt.Errorf("apt-cache shows no SHA256 for %s=%s", d.name, d.version)
	}
	pin.Version, pin.SHA256 = d.version, d.sha256
	var edits []edit
	for _, c := range []struct {
		n   *yaml.Node
		val string
	}{{e.pkg, pin.Package}, {e.version, pin.Version}, {e.sha256, pin.SHA256}} {
		if c.n.Value != c.val {
			edits = append(edits, edit{node: c.n, value: c.val})
		}
	}
	return pin, edits, nil
}

// aptStanza is apt's candidate of pkg.
func aptStanza(ctx context.Context, apt AptCache, pkg string) (debPackage, error) {
	out, err := apt(ctx, "show", "--no-all-versions", pkg)
	if err != nil {
		return debPackage{}, err
	}
	d := parseStanza(out)
	if d.name == "" || d.version == "" {
		return debPackage{}, fmt.Errorf("apt-cache shows no package %s", pkg)
	}
	return d, nil
}

// edit replaces one scalar's text in the recipe.
type edit struct {
	node  *yaml.Node
	value string
}

// applyEdits rewrites the scalars in place, keeping their quoting style.
func applyEdits(src []byte, edits []edit) ([]byte, error) {
	lines := strings.SplitAfter(string(src), "\n")
	for _, e := range edits {
		i, col := e.node.Line-1, e.node.Column-1
		line := lines[i]
		old, repl := e.node.Value, e.value
		switch e.node.Style {
		case yaml.DoubleQuotedStyle:
			old, repl = `"`+old+`"`, `"`+repl+`"`
		case yaml.SingleQuotedStyle:
			old, repl = "'"+old+"'", "'"+repl+"'"
		}
		if !strings.HasPrefix(line[col:], old) {
			return nil, fmt.Errorf("%d:%d: cannot rewrite %q in place (write it plain or quoted, without escapes)", e.node.Line, e.node.Column, e.node.Value)
		}
		lines[i] = line[:col] + repl + line[col+len(old):]
	}
	return []byte(strings.Join(lines, "")), nil
}

// writeAtomic replaces path with b through a temporary file.
func writeAtomic(path string, b []byte) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".bump-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(st.Mode().Perm()); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
