// Package sbom lists what a host ships (its kernel, images, Go modules and
// toolchains, Debian and Alpine packages) and writes the list as SPDX 2.3
// and CycloneDX 1.5 JSON. The output depends only on the packages given: the
// same host gives the same bytes.
package sbom

import (
	"cmp"
	"slices"
	"strings"
)

// Kind is what sort of component a package is.
type Kind string

// Package kinds.
const (
	KindKernel   Kind = "kernel"
	KindImage    Kind = "image"
	KindGoModule Kind = "go-module"
	KindGoStdlib Kind = "go-stdlib"
	KindDeb      Kind = "deb"
	KindApk      Kind = "apk"
)

// Package is one component of the host.
type Package struct {
	Kind    Kind   `json:"kind"`
	Name    string `json:"name"`
	Version string `json:"version"`
	// Ecosystem is the OSV ecosystem the package is matched in ("Go",
	// "Debian:12", "Alpine:v3.20"), or "" for none.
	Ecosystem string `json:"ecosystem,omitempty"`
	// Source and SourceVersion name the package OSV records key it by when
	// that differs from Name and Version: a Debian binary package's source
	// package, an Alpine package's origin.
	Source        string `json:"source,omitempty"`
	SourceVersion string `json:"source_version,omitempty"`
	// Arch is the package's architecture, when its database says.
	Arch string `json:"arch,omitempty"`
	// Digest is an image's manifest digest.
	Digest string `json:"digest,omitempty"`
	// ConfigDigest is a kernel's configuration digest.
	ConfigDigest string `json:"config_digest,omitempty"`
	// Distro qualifies Debian and Alpine package URLs ("debian-12").
	Distro string `json:"distro,omitempty"`
	// Repository is an image's repository (registry/name, no tag).
	Repository string `json:"repository,omitempty"`
	// Locations are the paths in the host (or "image:REF") where the
	// package was found: a binary, a package database.
	Locations []string `json:"locations"`
}

// MatchName is the name OSV records use for p.
func (p *Package) MatchName() string {
	if p.Source != "" {
		return p.Source
	}
	return p.Name
}

// MatchVersion is the version OSV records use for p.
func (p *Package) MatchVersion() string {
	if p.SourceVersion != "" {
		return p.SourceVersion
	}
	return p.Version
}

func (p *Package) key() string {
	return string(p.Kind) + "\x00" + p.Name + "\x00" + p.Version + "\x00" + p.Ecosystem + "\x00" + p.Arch + "\x00" + p.Digest
}

// Normalize merges duplicate packages (same kind, name, version, ecosystem,
// architecture and digest), unions and sorts their locations, and sorts the
// list, so any discovery order gives the same result.
func Normalize(pkgs []Package) []Package {
	byKey := map[string]int{}
	var out []Package
	for _, p := range pkgs {
		k := p.key()
		if i, ok := byKey[k]; ok {
			out[i].Locations = append(out[i].Locations, p.Locations...)
			continue
		}
		byKey[k] = len(out)
		p.Locations = slices.Clone(p.Locations)
		out = append(out, p)
	}
	for i := range out {
		slices.Sort(out[i].Locations)
		out[i].Locations = slices.Compact(out[i].Locations)
		if out[i].Locations == nil {
			out[i].Locations = []string{}
		}
	}
	slices.SortFunc(out, func(a, b Package) int {
		return cmp.Or(cmp.Compare(kindRank(a.Kind), kindRank(b.Kind)),
			strings.Compare(a.Name, b.Name), strings.Compare(a.Version, b.Version),
			strings.Compare(a.Ecosystem, b.Ecosystem), strings.Compare(a.Arch, b.Arch),
			strings.Compare(a.Digest, b.Digest))
	})
	return out
}

func kindRank(k Kind) int {
	return slices.Index([]Kind{KindKernel, KindImage, KindGoStdlib, KindGoModule, KindDeb, KindApk}, k)
}

// Document is a host's bill of materials.
type Document struct {
	// Name names the host (the spec's or artifact's base name).
	Name string
	// Created is the document's timestamp, RFC 3339, derived from
	// SOURCE_DATE_EPOCH by the caller ("1970-01-01T00:00:00Z" if empty).
	Created string
	// Packages, normalized.
	Packages []Package
}

func (d *Document) created() string {
	if d.Created == "" {
		return "1970-01-01T00:00:00Z"
	}
	return d.Created
}
