package version

import (
	"strings"

	"golang.org/x/mod/semver"
)

// Semver orders two semantic versions, with or without a leading "v"
// (Go module versions, pseudo-versions included), as the go command does.
// Build metadata is ignored; a pre-release sorts before its release; an
// invalid version sorts before every valid one.
func Semver(a, b string) int {
	return semver.Compare(canonical(a), canonical(b))
}

func canonical(v string) string {
	v = strings.TrimSpace(v)
	if !strings.HasPrefix(v, "v") {
		v = "v" + v
	}
	return v
}

// GoToolchain turns a Go toolchain version ("go1.22.3", "go1.21rc2",
// "go1.22") into the semantic version OSV's Go records use ("1.22.3",
// "1.21.0-rc.2", "1.22.0"). It returns "" for anything else.
func GoToolchain(v string) string {
	v, ok := strings.CutPrefix(v, "go")
	if !ok {
		return ""
	}
	v, _, _ = strings.Cut(v, " ") // "go1.22.3 X:boringcrypto"
	pre := ""
	for _, tag := range []string{"rc", "beta"} {
		if i := strings.Index(v, tag); i >= 0 {
			pre = "-" + tag + "." + v[i+len(tag):]
			v = v[:i]
			break
		}
	}
	parts := strings.Split(v, ".")
	for _, p := range parts {
		if !isNumeric(p) {
			return ""
		}
	}
	for len(parts) < 3 {
		parts = append(parts, "0")
	}
	s := strings.Join(parts[:3], ".") + pre
	if !semver.IsValid("v" + s) {
		return ""
	}
	return s
}

func isNumeric(s string) bool {
	d, rest := digits(s)
	return d != "" && rest == ""
}
