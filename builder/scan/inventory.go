package scan

import (
	"fmt"
	"io"
	"path"
	"sort"
	"strings"

	"github.com/bulkhead-dev/bulkhead/builder/rootfs"
	"github.com/bulkhead-dev/bulkhead/builder/scan/minimal"
	"github.com/bulkhead-dev/bulkhead/builder/scan/sbom"
)

// Package databases, relative to the root they describe.
const (
	dpkgStatus  = "var/lib/dpkg/status"
	dpkgStatusD = "var/lib/dpkg/status.d"
	apkDB       = "lib/apk/db/installed"
)

// inventory lists the host's packages: kernel, images, Go binaries and the
// package databases of every root in the tree (the host's and each
// container's).
func inventory(in Input, files *treeFiles) ([]sbom.Package, error) {
	var pkgs []sbom.Package
	if k := in.Kernel; k != nil {
		loc := "kernel"
		if k.Ref != "" {
			loc = "image:" + k.Ref
		}
		pkgs = append(pkgs, sbom.Package{Kind: sbom.KindKernel, Name: "linux", Version: k.Version, ConfigDigest: k.ConfigDigest, Locations: []string{loc}})
	}
	roots := containerRoots(files)
	for _, img := range in.Images {
		pkgs = append(pkgs, sbom.Package{
			Kind: sbom.KindImage, Name: img.Ref, Version: tagOf(img.Name), Digest: img.Digest.String(),
			Repository: repoOf(img.Name), Locations: append([]string{"image:" + img.Ref}, roots[imageName(img)]...),
		})
	}
	if len(in.Images) == 0 {
		// A built artifact: the images it was built from are gone from its
		// files, but the SBOM it carries lists them.
		imgs, err := embeddedImages(in.Tree)
		if err != nil {
			return nil, err
		}
		pkgs = append(pkgs, imgs...)
	}
	pkgs = append(pkgs, files.goPkgs...)
	dbs, err := packageDBs(files)
	if err != nil {
		return nil, err
	}
	pkgs = append(pkgs, dbs...)
	return sbom.Normalize(pkgs), nil
}

// containerRoots lists, by image (REF@DIGEST), the container roots in the
// tree its files were unpacked into (containers/services/web/rootfs): an
// image package's locations, which tell an artifact's scan whose files a
// container root holds.
func containerRoots(files *treeFiles) map[string][]string {
	out := map[string][]string{}
	seen := map[string]bool{}
	for _, e := range files.entries {
		root, ok := containerRoot(e.Path)
		if !ok || e.Path == root || seen[root] {
			continue
		}
		c, _, _ := strings.Cut(e.Origin, "#")
		if !strings.Contains(c, "@sha256:") {
			continue
		}
		seen[root] = true
		out[c] = append(out[c], root)
	}
	for _, roots := range out {
		sort.Strings(roots)
	}
	return out
}

// containerRoot is the container root p lies in: containers/SECTION/NAME/
// rootfs or lower.
func containerRoot(p string) (string, bool) {
	parts := strings.SplitN(p, "/", 5)
	if len(parts) < 4 || parts[0] != "containers" || parts[3] != "rootfs" && parts[3] != "lower" {
		return "", false
	}
	return strings.Join(parts[:4], "/"), true
}

// attributeRoots gives the files of an artifact's container roots the
// component of the image the SBOM says was unpacked there, as the scan of
// the spec names it (REF@DIGEST).
func attributeRoots(entries []*minimal.Entry, pkgs []sbom.Package) {
	byRoot := map[string]string{}
	for _, p := range pkgs {
		if p.Kind != sbom.KindImage {
			continue
		}
		for _, l := range p.Locations {
			if _, ok := containerRoot(l + "/x"); ok {
				byRoot[l] = p.Name + "@" + p.Digest
			}
		}
	}
	for _, e := range entries {
		if root, ok := containerRoot(e.Path); ok && byRoot[root] != "" {
			e.Origin = byRoot[root]
		}
	}
}

// embeddedImages are the images the SBOM at EmbedPath lists; none when
// the tree carries no SBOM.
func embeddedImages(t *rootfs.Tree) ([]sbom.Package, error) {
	e := t.Get(EmbedPath)
	if e == nil || e.Kind != rootfs.KindFile {
		return nil, nil
	}
	if e.Size > sbom.MaxSPDX {
		return nil, fmt.Errorf("/%s: %d bytes, larger than the limit of %d", EmbedPath, e.Size, sbom.MaxSPDX)
	}
	data, err := readEntry(e)
	if err != nil {
		return nil, fmt.Errorf("reading /%s: %w", EmbedPath, err)
	}
	imgs, err := sbom.SPDXImages(data)
	if err != nil {
		return nil, fmt.Errorf("/%s: %w", EmbedPath, err)
	}
	return imgs, nil
}

// repoOf and tagOf split an expanded reference "registry/name:tag".
func repoOf(name string) string {
	name, _, _ = strings.Cut(name, "@")
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		return name[:i]
	}
	return name
}

func tagOf(name string) string {
	name, _, _ = strings.Cut(name, "@")
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		return name[i+1:]
	}
	return ""
}

func packageDBs(files *treeFiles) ([]sbom.Package, error) {
	var paths []string
	for p, e := range files.byPath {
		if e.Kind != rootfs.KindFile {
			continue
		}
		if strings.HasSuffix("/"+p, "/"+dpkgStatus) || strings.HasSuffix("/"+p, "/"+apkDB) ||
			strings.HasSuffix("/"+path.Dir(p), "/"+dpkgStatusD) {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	var out []sbom.Package
	for _, p := range paths {
		data, err := readEntry(files.byPath[p])
		if err != nil {
			return nil, err
		}
		switch {
		case strings.HasSuffix(p, apkDB):
			out = append(out, sbom.ParseApkInstalled(data, p, distroOf(files, rootOf(p, apkDB)))...)
		case strings.HasSuffix(p, dpkgStatus):
			out = append(out, sbom.ParseDpkgStatus(data, p, distroOf(files, rootOf(p, dpkgStatus)))...)
		default:
			out = append(out, sbom.ParseDpkgStatus(data, p, distroOf(files, rootOf(path.Dir(p), dpkgStatusD)))...)
		}
	}
	return out, nil
}

func rootOf(p, suffix string) string { return strings.TrimSuffix(strings.TrimSuffix(p, suffix), "/") }

// distroOf reads the os-release of the root at tree path root.
func distroOf(files *treeFiles, root string) sbom.Distro {
	for _, p := range []string{"etc/os-release", "usr/lib/os-release"} {
		e := files.byPath[path.Join(root, p)]
		if e == nil || e.Kind != rootfs.KindFile {
			continue
		}
		if data, err := readEntry(e); err == nil {
			return sbom.ParseOSRelease(data)
		}
	}
	return sbom.Distro{}
}

func readEntry(e *rootfs.Entry) ([]byte, error) {
	rc, err := e.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}
