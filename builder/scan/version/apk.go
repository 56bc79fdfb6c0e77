package version

import "strings"

// Apk orders two Alpine versions as apk-tools does (src/version.c):
// digit{.digit}...{letter}{_suffix{#}}...{~hash}{-r#}, compared token by
// token. There is no maintained Go library for this order, so this follows
// apk's tokenizer step for step and TestApkOracle holds it to apk-tools' own
// test vectors. Invalid versions compare as apk compares them: up to the
// first token it cannot read.
func Apk(a, b string) int { return apkCompare(a, b, false) }

// ApkValid reports whether apk accepts v as a version.
func ApkValid(v string) bool {
	t := apkToken{s: v}
	for t.first(); t.kind < tokEnd; t.next() {
	}
	return t.kind == tokEnd
}

// Token kinds, in the order apk allows them to follow one another.
const (
	tokInitialDigit = iota
	tokDigit
	tokLetter
	tokSuffix
	tokSuffixNo
	tokCommitHash
	tokRevisionNo
	tokEnd
	tokInvalid
)

// apk suffix ranks; sufNone is the release itself.
const sufNone = 5

var apkSuffixes = map[string]int{
	"alpha": 1, "beta": 2, "pre": 3, "rc": 4,
	"cvs": 6, "svn": 7, "git": 8, "hg": 9, "p": 10,
}

// apkToken walks the tokens of one version string.
type apkToken struct {
	s      string // what is left
	kind   int
	suffix int
	value  string
}

func (t *apkToken) first() {
	t.kind = tokInitialDigit
	t.digits()
}

func (t *apkToken) digits() {
	t.value, t.s = digits(t.s)
	if t.value == "" {
		t.kind = tokInvalid
	}
}

// span takes the leading run of s made of bytes for which ok holds.
func (t *apkToken) span(ok func(byte) bool) {
	i := 0
	for i < len(t.s) && ok(t.s[i]) {
		i++
	}
	t.value, t.s = t.s[:i], t.s[i:]
}

func (t *apkToken) next() {
	if t.s == "" {
		t.kind = tokEnd
		return
	}
	switch c := t.s[0]; {
	case c >= 'a' && c <= 'z':
		if t.kind > tokDigit {
			t.kind = tokInvalid
			return
		}
		t.value, t.s, t.kind = t.s[:1], t.s[1:], tokLetter
	case c == '.' || isDigit(c):
		if c == '.' && t.kind > tokDigit {
			t.kind = tokInvalid
			return
		}
		t.s = strings.TrimPrefix(t.s, ".")
		switch t.kind {
		case tokInitialDigit, tokDigit:
			t.kind = tokDigit
		case tokSuffix:
			t.kind = tokSuffixNo
		default:
			t.kind = tokInvalid
			return
		}
		t.digits()
	case c == '_':
		if t.kind > tokSuffixNo {
			t.kind = tokInvalid
			return
		}
		t.s = t.s[1:]
		t.span(func(c byte) bool { return c >= 'a' && c <= 'z' })
		var ok bool
		if t.suffix, ok = apkSuffixes[t.value]; !ok {
			t.kind = tokInvalid
			return
		}
		t.kind = tokSuffix
	case c == '~':
		if t.kind >= tokCommitHash {
			t.kind = tokInvalid
			return
		}
		t.s = t.s[1:]
		t.span(func(c byte) bool { return isDigit(c) || c >= 'a' && c <= 'f' })
		t.kind = tokCommitHash
		if t.value == "" {
			t.kind = tokInvalid
		}
	case c == '-':
		if t.kind >= tokRevisionNo || !strings.HasPrefix(t.s, "-r") {
			t.kind = tokInvalid
			return
		}
		t.s = t.s[2:]
		t.kind = tokRevisionNo
		t.digits()
	default:
		t.kind = tokInvalid
	}
}

// cmpToken compares two tokens of the same kind.
func cmpToken(a, b *apkToken) int {
	switch a.kind {
	case tokDigit:
		if a.value[0] == '0' || b.value[0] == '0' {
			// a leading zero compares as a string (as Gentoo does)
			return strings.Compare(a.value, b.value)
		}
		return cmpDigits(a.value, b.value)
	case tokInitialDigit, tokSuffixNo, tokRevisionNo:
		return cmpDigits(a.value, b.value)
	case tokSuffix:
		return sign(a.suffix - b.suffix)
	}
	return strings.Compare(a.value, b.value)
}

// apkCompare is apk_version_compare_fuzzy: with fuzzy, a matches b when b
// is a prefix of a ("3.6.9" ~ "3.6").
func apkCompare(a, b string, fuzzy bool) int {
	ta, tb := apkToken{s: a}, apkToken{s: b}
	ta.first()
	tb.first()
	for ta.kind == tb.kind && ta.kind < tokEnd {
		if c := cmpToken(&ta, &tb); c != 0 {
			return c
		}
		ta.next()
		tb.next()
	}
	switch {
	case ta.kind == tb.kind, tb.kind == tokEnd && fuzzy:
		return 0
	case ta.kind == tokSuffix && ta.suffix < sufNone:
		return -1
	case tb.kind == tokSuffix && tb.suffix < sufNone:
		return 1
	case ta.kind > tb.kind:
		return -1
	}
	return 1
}
