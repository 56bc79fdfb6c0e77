package update

// CompareVersions orders versions as Debian orders upstream versions:
// runs of digits compare as numbers, other runs character by character
// with letters before other characters and '~' before everything, even
// the end ("1.0~rc1" < "1.0" < "1.0.1" < "1.10"). It returns -1, 0 or 1.
func CompareVersions(a, b string) int {
	for a != "" || b != "" {
		var an, bn string
		an, a = span(a, false)
		bn, b = span(b, false)
		if c := compareText(an, bn); c != 0 {
			return c
		}
		an, a = span(a, true)
		bn, b = span(b, true)
		if c := compareNumber(an, bn); c != 0 {
			return c
		}
	}
	return 0
}

// span splits s after its leading run of digits (digits true) or
// non-digits.
func span(s string, digits bool) (string, string) {
	i := 0
	for i < len(s) && isDigit(s[i]) == digits {
		i++
	}
	return s[:i], s[i:]
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// order is dpkg's weight of a character; 0 stands for the end.
func order(c byte) int {
	switch {
	case c == '~':
		return -1
	case isLetter(c):
		return int(c)
	default:
		return int(c) + 256
	}
}

func compareText(a, b string) int {
	for i := 0; i < len(a) || i < len(b); i++ {
		var x, y int
		if i < len(a) {
			x = order(a[i])
		}
		if i < len(b) {
			y = order(b[i])
		}
		if x != y {
			return sign(x - y)
		}
	}
	return 0
}

func compareNumber(a, b string) int {
	a, b = trimZeros(a), trimZeros(b)
	if len(a) != len(b) {
		return sign(len(a) - len(b))
	}
	for i := range len(a) {
		if a[i] != b[i] {
			return sign(int(a[i]) - int(b[i]))
		}
	}
	return 0
}

func trimZeros(s string) string {
	for len(s) > 0 && s[0] == '0' {
		s = s[1:]
	}
	return s
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
