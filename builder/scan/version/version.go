// Package version orders package versions the way each packaging ecosystem
// does: semantic versioning for Go modules and the Go toolchain
// (golang.org/x/mod/semver, the go command's own), dpkg's order for Debian
// (github.com/knqyf263/go-deb-version, checked against dpkg), apk's order for
// Alpine (a port of apk-tools' tokenizer, checked against its test vectors).
package version

import "strings"

// Compare orders a and b under the rules of ecosystem, an OSV ecosystem
// name ("Go", "Debian:12", "Alpine:v3.20"). It returns -1, 0 or +1.
// Unknown ecosystems compare as semantic versions.
func Compare(ecosystem, a, b string) int {
	switch base, _, _ := strings.Cut(ecosystem, ":"); base {
	case "Debian", "Ubuntu":
		return Dpkg(a, b)
	case "Alpine":
		return Apk(a, b)
	}
	return Semver(a, b)
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}

// cmpDigits compares two runs of decimal digits numerically, however long.
func cmpDigits(a, b string) int {
	a = strings.TrimLeft(a, "0")
	b = strings.TrimLeft(b, "0")
	if len(a) != len(b) {
		return sign(len(a) - len(b))
	}
	return strings.Compare(a, b)
}

// digits splits s into its leading run of digits and the rest.
func digits(s string) (string, string) {
	i := 0
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return s[:i], s[i:]
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
