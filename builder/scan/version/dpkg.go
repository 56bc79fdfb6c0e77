package version

import "strings"

// Dpkg orders two Debian versions ([epoch:]upstream[-revision]) as dpkg
// --compare-versions does: epochs numerically, then upstream and revision
// by alternating non-digit runs (where "~" sorts before anything, even the
// end) and digit runs (numerically).
func Dpkg(a, b string) int {
	ea, ua, ra := splitDpkg(a)
	eb, ub, rb := splitDpkg(b)
	if c := cmpDigits(ea, eb); c != 0 {
		return c
	}
	if c := verrevcmp(ua, ub); c != 0 {
		return c
	}
	return verrevcmp(ra, rb)
}

func splitDpkg(v string) (epoch, upstream, revision string) {
	v = strings.TrimSpace(v)
	epoch = "0"
	if e, rest, ok := strings.Cut(v, ":"); ok {
		epoch, v = e, rest
	}
	if i := strings.LastIndexByte(v, '-'); i >= 0 {
		return epoch, v[:i], v[i+1:]
	}
	return epoch, v, ""
}

// order is dpkg's weight of a character in a non-digit run; 0 is the end.
func order(s string, i int) int {
	if i >= len(s) {
		return 0
	}
	c := s[i]
	switch {
	case isDigit(c):
		return 0
	case isLetter(c):
		return int(c)
	case c == '~':
		return -1
	}
	return int(c) + 256
}

func verrevcmp(a, b string) int {
	for a != "" || b != "" {
		i := 0
		for (i < len(a) && !isDigit(a[i])) || (i < len(b) && !isDigit(b[i])) {
			if c := order(a, i) - order(b, i); c != 0 {
				return sign(c)
			}
			i++
		}
		a, b = a[min(i, len(a)):], b[min(i, len(b)):]
		var da, db string
		da, a = digits(a)
		db, b = digits(b)
		if c := cmpDigits(da, db); c != 0 {
			return c
		}
	}
	return 0
}
