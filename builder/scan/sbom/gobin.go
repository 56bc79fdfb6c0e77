package sbom

import (
	"debug/buildinfo"
	"strings"

	"github.com/bulkhead-dev/bulkhead/builder/scan/version"
)

// GoPackages lists the Go toolchain and the modules a Go binary at location
// was built from, as its build information records them. The main module
// counts only with a real version (not "(devel)").
func GoPackages(bi *buildinfo.BuildInfo, location string) []Package {
	var out []Package
	if v := version.GoToolchain(bi.GoVersion); v != "" {
		out = append(out, Package{Kind: KindGoStdlib, Name: "stdlib", Version: v, Ecosystem: "Go", Locations: []string{location}})
	}
	if m := bi.Main; m.Path != "" && m.Version != "" && m.Version != "(devel)" {
		out = append(out, goModule(m.Path, m.Version, location))
	}
	for _, d := range bi.Deps {
		path, ver := d.Path, d.Version
		if d.Replace != nil {
			path, ver = d.Replace.Path, d.Replace.Version
		}
		if ver == "" || strings.HasPrefix(path, ".") || strings.HasPrefix(path, "/") {
			continue // a replacement by a local directory has no version
		}
		out = append(out, goModule(path, ver, location))
	}
	return out
}

func goModule(path, ver, location string) Package {
	return Package{Kind: KindGoModule, Name: path, Version: ver, Ecosystem: "Go", Locations: []string{location}}
}
