package sbom

import (
	"bufio"
	"bytes"
	"strings"
)

// Distro is what an os-release file says about a root.
type Distro struct {
	ID        string // "debian", "alpine"
	VersionID string // "12", "3.20.3"
}

// ParseOSRelease reads an os-release file.
func ParseOSRelease(data []byte) Distro {
	var d Distro
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if !ok {
			continue
		}
		v = strings.Trim(v, `"'`)
		switch k {
		case "ID":
			d.ID = v
		case "VERSION_ID":
			d.VersionID = v
		}
	}
	return d
}

// Ecosystem is the OSV ecosystem of the distribution's packages: "Debian:12",
// "Alpine:v3.20"; the bare name when the release is unknown.
func (d Distro) Ecosystem(base string) string {
	v := d.VersionID
	switch base {
	case "Debian":
		v, _, _ = strings.Cut(v, ".")
	case "Alpine":
		if parts := strings.Split(v, "."); len(parts) >= 2 {
			v = "v" + parts[0] + "." + parts[1]
		} else {
			v = ""
		}
	}
	if v == "" {
		return base
	}
	return base + ":" + v
}

// purlDistro is the distro qualifier of package URLs: "debian-12".
func (d Distro) purlDistro() string {
	if d.ID == "" || d.VersionID == "" {
		return ""
	}
	return d.ID + "-" + d.VersionID
}

// stanzas splits an RFC 822-style database (dpkg status) into paragraphs
// of fields; continuation lines are dropped (no field we read has them).
func stanzas(data []byte, sep string) []map[string]string {
	var out []map[string]string
	cur := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimRight(line, "\r")
		if line == "" {
			if len(cur) > 0 {
				out = append(out, cur)
				cur = map[string]string{}
			}
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			continue
		}
		if k, v, ok := strings.Cut(line, sep); ok {
			cur[k] = strings.TrimSpace(v)
		}
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// ParseDpkgStatus lists the installed packages of a dpkg status file (or a
// status.d file of a distroless image, whose stanzas carry no Status),
// found at location, in a root whose os-release says d.
func ParseDpkgStatus(data []byte, location string, d Distro) []Package {
	var out []Package
	for _, s := range stanzas(data, ":") {
		if st, ok := s["Status"]; ok && !strings.HasSuffix(st, " installed") {
			continue
		}
		if s["Package"] == "" || s["Version"] == "" {
			continue
		}
		p := Package{
			Kind: KindDeb, Name: s["Package"], Version: s["Version"], Arch: s["Architecture"],
			Ecosystem: d.Ecosystem("Debian"), Distro: d.purlDistro(), Locations: []string{location},
		}
		if src := s["Source"]; src != "" {
			name, ver, hasVer := strings.Cut(src, " ")
			if name != p.Name {
				p.Source = name
			}
			if hasVer {
				p.SourceVersion = strings.Trim(strings.TrimSpace(ver), "()")
			}
		}
		out = append(out, p)
	}
	return out
}

// ParseApkInstalled lists the packages of an apk database
// (lib/apk/db/installed) found at location.
func ParseApkInstalled(data []byte, location string, d Distro) []Package {
	var out []Package
	for _, s := range stanzas(data, ":") {
		if s["P"] == "" || s["V"] == "" {
			continue
		}
		p := Package{
			Kind: KindApk, Name: s["P"], Version: s["V"], Arch: s["A"],
			Ecosystem: d.Ecosystem("Alpine"), Distro: d.purlDistro(), Locations: []string{location},
		}
		if o := s["o"]; o != "" && o != p.Name {
			p.Source = o
		}
		out = append(out, p)
	}
	return out
}
