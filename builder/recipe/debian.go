package recipe

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"github.com/bulkhead-dev/bulkhead/internal/regfile"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// DebianInput records one Debian package that went into an image.
type DebianInput struct {
	Package string `json:"package"`
	Version string `json:"version"`
	Arch    string `json:"architecture"`
	SHA256  string `json:"sha256"` // of the .deb
}

// debPackage is a package as apt-cache shows it.
type debPackage struct {
	name, version, arch, sha256, filename string
	depends                               []string // names only
}

// aptShow asks apt-cache for pkg at version (or the candidate).
func (b *builder) aptShow(ctx context.Context, pkg, version string) (debPackage, error) {
	arg := pkg
	if version != "" {
		arg += "=" + version
	}
	out, err := b.run(ctx, "", os.Environ(), "apt-cache", "show", "--no-all-versions", arg)
	if err != nil {
		return debPackage{}, fmt.Errorf("looking up Debian package %s: %w", arg, err)
	}
	d := parseStanza(out)
	if d.name == "" || d.version == "" {
		return debPackage{}, fmt.Errorf("looking up Debian package %s: apt-cache shows no package", arg)
	}
	return d, nil
}

// parseStanza reads the first stanza of apt-cache show output.
func parseStanza(b []byte) debPackage {
	var d debPackage
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			break
		}
		k, v, ok := strings.Cut(line, ": ")
		if !ok {
			continue
		}
		switch k {
		case "Package":
			d.name = v
		case "Version":
			d.version = v
		case "Architecture":
			d.arch = v
		case "SHA256":
			d.sha256 = v
		case "Filename":
			d.filename = v
		case "Depends", "Pre-Depends":
			for _, dep := range strings.Split(v, ",") {
				alt, _, _ := strings.Cut(dep, "|")
				name, _, _ := strings.Cut(strings.TrimSpace(alt), " ")
				name, _, _ = strings.Cut(name, ":")
				d.depends = append(d.depends, name)
			}
		}
	}
	return d
}

// fetchDeb downloads d with apt-get download into the cache, unless it is
// there, and checks its sha256 against apt's index.
func (b *builder) fetchDeb(ctx context.Context, d debPackage) (file, sum string, err error) {
	dir := filepath.Join(b.cacheDir, "deb")
	file = filepath.Join(dir, strings.ReplaceAll(fmt.Sprintf("%s_%s_%s.deb", d.name, d.version, d.arch), ":", "%3a"))
	if sum, err := fileSHA256(file); err == nil && (d.sha256 == "" || sum == d.sha256) {
		return file, sum, nil
	}
	b.logf("apt-get download %s=%s", d.name, d.version)
	err = b.fill(file+".d", func(tmp string) error {
		_, err := b.run(ctx, tmp, os.Environ(), "apt-get", "download", "-q", "-o", "APT::Sandbox::User=root", d.name+"="+d.version)
		if err != nil {
			return err
		}
		debs, err := filepath.Glob(filepath.Join(tmp, "*.deb"))
		if err != nil || len(debs) != 1 {
			return fmt.Errorf("apt-get download left %d .deb files, want 1", len(debs))
		}
		return os.Rename(debs[0], file)
	})
	os.RemoveAll(file + ".d")
	if err != nil {
		return "", "", fmt.Errorf("downloading %s=%s: %w", d.name, d.version, err)
	}
	if sum, err = fileSHA256(file); err != nil {
		return "", "", err
	}
	if d.sha256 != "" && sum != d.sha256 {
		os.Remove(file)
		return "", "", fmt.Errorf("downloading %s=%s: sha256 %s, apt's index says %s", d.name, d.version, sum, d.sha256)
	}
	return file, sum, nil
}

func fileSHA256(name string) (string, error) {
	sum, _, err := regfile.SHA256(name)
	return sum, err
}

// deb resolves, fetches and records one package: name at version (apt's
// candidate if empty), whose .deb must have the sha256 pin if one is given.
// A pinned .deb already in the cache needs no apt; a pinned version apt no
// longer serves is an error that says how to move the pin.
func (b *builder) deb(ctx context.Context, name, version, pin string) (string, DebianInput, error) {
	if file, in, ok := b.cachedDeb(name, version, pin); ok {
		b.debIn = append(b.debIn, in)
		return file, in, nil
	}
	d, err := b.aptShow(ctx, name, version)
	if err != nil && version != "" {
		return "", DebianInput{}, fmt.Errorf("pinned %s=%s is no longer served by apt: run scripts/bump-pins (%w)", name, version, err)
	}
	if err != nil {
		return "", DebianInput{}, err
	}
	if pin != "" && d.sha256 != pin {
		return "", DebianInput{}, fmt.Errorf("pinned %s=%s: apt's index gives sha256 %s, the recipe pins %s", name, version, d.sha256, pin)
	}
	file, sum, err := b.fetchDeb(ctx, d)
	if err != nil {
		return "", DebianInput{}, err
	}
	in := DebianInput{Package: d.name, Version: d.version, Arch: d.arch, SHA256: sum}
	b.debIn = append(b.debIn, in)
	return file, in, nil
}

// cachedDeb finds the .deb of name=version with the sha256 pin in the
// cache (fetchDeb's names: <name>_<version>_<arch>.deb).
func (b *builder) cachedDeb(name, version, pin string) (string, DebianInput, bool) {
	if pin == "" {
		return "", DebianInput{}, false
	}
	prefix := strings.ReplaceAll(name+"_"+version+"_", ":", "%3a")
	files, _ := filepath.Glob(filepath.Join(b.cacheDir, "deb", prefix+"*.deb"))
	for _, f := range files {
		arch := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), prefix), ".deb")
		if sum, err := fileSHA256(f); err == nil && sum == pin && !strings.Contains(arch, "_") {
			return f, DebianInput{Package: name, Version: version, Arch: arch, SHA256: sum}, true
		}
	}
	return "", DebianInput{}, false
}

// extractDeb unpacks the data of a .deb into a new temporary directory
// under the cache and returns it; the caller removes it.
func (b *builder) extractDeb(ctx context.Context, deb string) (string, error) {
	if err := os.MkdirAll(b.cacheDir, 0o755); err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp(b.cacheDir, ".x-")
	if err != nil {
		return "", err
	}
	if _, err := b.run(ctx, "", os.Environ(), "dpkg-deb", "-x", deb, dir); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("unpacking %s: %w", filepath.Base(deb), err)
	}
	return dir, nil
}

func (b *builder) addDebian(ctx context.Context, t *tree) error {
	for _, dp := range b.recipe.Debian {
		b.logf("debian: %s", dp.Package)
		deb, _, err := b.deb(ctx, dp.Package, dp.Version, dp.SHA256)
		if err != nil {
			return err
		}
		root, err := b.extractDeb(ctx, deb)
		if err != nil {
			return err
		}
		err = addPaths(t, root, dp.Paths)
		os.RemoveAll(root)
		if err != nil {
			return fmt.Errorf("taking files from %s: %w", dp.Package, err)
		}
	}
	return nil
}

// addPaths adds each path under root, recursively, to the tree. File
// contents are read into memory because root is removed afterwards.
func addPaths(t *tree, root string, paths []string) error {
	for _, p := range paths {
		fsys := os.DirFS(root)
		err := fs.WalkDir(fsys, strings.TrimPrefix(p, "/"), func(name string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			e, err := diskEntry(root, name, d)
			if err != nil {
				return err
			}
			return t.add(e)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// diskEntry makes a tree entry from a file unpacked on disk.
func diskEntry(root, name string, d fs.DirEntry) (entry, error) {
	full := filepath.Join(root, filepath.FromSlash(name))
	info, err := d.Info()
	if err != nil {
		return entry{}, err
	}
	perm := int64(info.Mode().Perm())
	if info.Mode()&fs.ModeSetuid != 0 {
		perm |= 0o4000
	}
	if info.Mode()&fs.ModeSetgid != 0 {
		perm |= 0o2000
	}
	switch {
	case d.IsDir():
		return dirEntry(name, perm), nil
	case d.Type()&fs.ModeSymlink != 0:
		target, err := os.Readlink(full)
		return symlinkEntry(name, target), err
	case d.Type().IsRegular():
		data, err := os.ReadFile(full)
		return dataEntry(name, perm, data), err
	}
	return entry{}, fmt.Errorf("/%s: unsupported file type %s", path.Clean(name), d.Type())
}
