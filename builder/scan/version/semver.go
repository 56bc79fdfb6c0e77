package version

import "strings"

// Semver orders two semantic versions, with or without a leading "v"
// (Go module versions, pseudo-versions included). Build metadata is
// ignored; a pre-release sorts before its release.
func Semver(a, b string) int {
	ca, pa := splitSemver(a)
	cb, pb := splitSemver(b)
	for i := 0; i < 3; i++ {
		if c := cmpDigits(part(ca, i), part(cb, i)); c != 0 {
			return c
		}
	}
	switch {
	case pa == pb:
		return 0
	case pa == "":
		return 1
	case pb == "":
		return -1
	}
	return cmpPrerelease(pa, pb)
}

func splitSemver(v string) ([]string, string) {
	v = strings.TrimPrefix(strings.TrimSpace(v), "v")
	v, _, _ = strings.Cut(v, "+")
	core, pre, _ := strings.Cut(v, "-")
	return strings.Split(core, "."), pre
}

func part(p []string, i int) string {
	if i < len(p) {
		return p[i]
	}
	return "0"
}

func cmpPrerelease(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) && i < len(bs); i++ {
		x, y := as[i], bs[i]
		xn, yn := isNumeric(x), isNumeric(y)
		var c int
		switch {
		case xn && yn:
			c = cmpDigits(x, y)
		case xn:
			c = -1
		case yn:
			c = 1
		default:
			c = strings.Compare(x, y)
		}
		if c != 0 {
			return c
		}
	}
	return sign(len(as) - len(bs))
}

func isNumeric(s string) bool {
	d, rest := digits(s)
	return d != "" && rest == ""
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
	return strings.Join(parts[:3], ".") + pre
}
