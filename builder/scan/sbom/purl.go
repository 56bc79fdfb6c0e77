package sbom

import (
	"fmt"
	"strings"
)

// PURL is p's package URL (github.com/package-url/purl-spec).
func (p *Package) PURL() string {
	switch p.Kind {
	case KindGoModule:
		return "pkg:golang/" + escapePath(p.Name) + "@" + escape(p.Version)
	case KindGoStdlib:
		return "pkg:golang/stdlib@" + escape(p.Version)
	case KindDeb:
		return "pkg:deb/debian/" + escape(p.Name) + "@" + escape(p.Version) + qualifiers("arch", p.Arch, "distro", p.Distro)
	case KindApk:
		return "pkg:apk/alpine/" + escape(p.Name) + "@" + escape(p.Version) + qualifiers("arch", p.Arch, "distro", p.Distro)
	case KindImage:
		name := p.Repository
		if i := strings.LastIndexByte(name, '/'); i >= 0 {
			name = name[i+1:]
		}
		return "pkg:oci/" + escape(strings.ToLower(name)) + "@" + escape(p.Digest) + qualifiers("repository_url", p.Repository)
	case KindKernel:
		return "pkg:generic/" + escape(p.Name) + "@" + escape(p.Version)
	}
	return ""
}

// qualifiers renders ?k=v&k=v for the non-empty values, keys in the order
// given (callers give them sorted); "/" stays as it is in values, as in
// the spec's examples (repository_url=docker.io/library/debian).
func qualifiers(kv ...string) string {
	var parts []string
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			parts = append(parts, kv[i]+"="+escapePath(kv[i+1]))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return "?" + strings.Join(parts, "&")
}

func escapePath(s string) string {
	segs := strings.Split(s, "/")
	for i, seg := range segs {
		segs[i] = escape(seg)
	}
	return strings.Join(segs, "/")
}

// escape percent-encodes everything but RFC 3986's unreserved characters.
func escape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}
