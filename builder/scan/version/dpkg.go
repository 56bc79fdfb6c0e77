package version

import (
	"strings"

	debversion "github.com/knqyf263/go-deb-version"
)

// Dpkg orders two Debian versions ([epoch:]upstream[-revision]) as dpkg
// --compare-versions does (the library follows Debian Policy 5.6.12; the
// oracle test holds it to dpkg itself). A version dpkg would reject
// compares as a plain string, after every valid one.
func Dpkg(a, b string) int {
	va, errA := debversion.NewVersion(a)
	vb, errB := debversion.NewVersion(b)
	switch {
	case errA != nil && errB != nil:
		return strings.Compare(a, b)
	case errA != nil:
		return 1
	case errB != nil:
		return -1
	}
	return sign(va.Compare(vb))
}
