package secrets

import (
	"bytes"
	"math"
	"regexp"
	"strings"
)

// urlCredentials is scheme://user:password@host.
var urlCredentials = regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.-]*://([^:/\s@"'<>]+):([^@/\s"'<>]+)@[A-Za-z0-9.-]+`)

// placeholders are passwords that say they are not real.
var placeholders = []string{"password", "passwd", "pass", "secret", "changeme", "user", "username", "token"}

func findURLCredentials(data []byte) []ruleMatch {
	var out []ruleMatch
	for i := 0; ; {
		j := bytes.Index(data[i:], []byte("://"))
		if j < 0 {
			return out
		}
		at := i + j
		i = at + 3
		ls := max(0, at-32)
		if k := bytes.LastIndexAny(data[ls:at], " \t\n\"'=(<>"); k >= 0 {
			ls += k + 1
		}
		le := min(len(data), at+256)
		if k := bytes.IndexAny(data[at:le], " \t\n\"'<>"); k >= 0 {
			le = at + k
		}
		m := urlCredentials.FindSubmatchIndex(data[ls:le])
		if m == nil {
			continue
		}
		pw := string(data[ls+m[4] : ls+m[5]])
		if placeholderValue(pw) {
			continue
		}
		out = append(out, ruleMatch{"url-credentials", match{off: ls + m[4], secret: pw, context: string(data[ls+m[0] : ls+m[4]])}})
	}
}

func placeholderValue(v string) bool {
	lv := strings.ToLower(v)
	for _, p := range placeholders {
		if lv == p {
			return true
		}
	}
	return len(v) < 4 || strings.ContainsAny(v, "$%{}*") || strings.Trim(v, string(v[0])) == "" || isExample(v)
}

// keywords mark names of variables that hold secrets.
var keywords = []string{"secret", "passw", "token", "apikey", "api_key", "api-key", "access_key", "accesskey", "auth_key", "private_key", "credential"}

// findAssignments finds NAME=VALUE (or NAME: VALUE, NAME := "VALUE")
// assignments whose name holds a keyword and whose value looks random
// (long, mixed, high entropy). The AWS secret key of a key pair gets its
// own rule. It parses at each keyword hit, without regular expressions:
// text full of keywords stays fast.
func findAssignments(data []byte) []ruleMatch {
	lower := asciiLower(data)
	var out []ruleMatch
	done := map[int]bool{}
	for _, kw := range keywords {
		for i := 0; ; {
			j := bytes.Index(lower[i:], []byte(kw))
			if j < 0 {
				break
			}
			at := i + j
			i = at + len(kw)
			m, ok := assignmentAt(data, at, len(kw))
			if !ok || done[m.off] {
				continue
			}
			done[m.off] = true
			out = append(out, m)
		}
	}
	return out
}

func isNameChar(c byte) bool { return isWordChar(c) || c == '.' || c == '-' }

func isValueChar(c byte) bool {
	return isWordChar(c) || strings.IndexByte("+/=.-!@#%^&", c) >= 0
}

// assignmentAt parses the assignment whose name holds the keyword at
// data[at:at+n].
func assignmentAt(data []byte, at, n int) (ruleMatch, bool) {
	ns := at
	for ns > 0 && isNameChar(data[ns-1]) {
		ns--
	}
	p := at + n
	for p < len(data) && isNameChar(data[p]) {
		p++
	}
	name := strings.ToLower(string(data[ns:p]))
	skip := func(set string) {
		for p < len(data) && strings.IndexByte(set, data[p]) >= 0 {
			p++
		}
	}
	skip(`"'`)
	skip(" \t")
	switch {
	case p+1 < len(data) && data[p] == ':' && data[p+1] == '=':
		p += 2
	case p < len(data) && (data[p] == '=' || data[p] == ':'):
		p++
	default:
		return ruleMatch{}, false
	}
	skip(" \t")
	skip(`"'`)
	vs := p
	for p < len(data) && p-vs < 256 && isValueChar(data[p]) {
		p++
	}
	value := string(data[vs:p])
	if !randomLooking(value) {
		return ruleMatch{}, false
	}
	rule := "generic-secret"
	if strings.Contains(name, "aws") || strings.Contains(name, "secret_access_key") || strings.Contains(name, "secretaccesskey") {
		rule = "aws-secret-access-key"
	}
	return ruleMatch{rule, match{off: vs, secret: value, context: string(data[ns:vs])}}, true
}

// randomLooking says a value is likely a generated secret: long, with
// letters and digits, high Shannon entropy, not an example.
func randomLooking(v string) bool {
	if len(v) < 16 || isExample(v) {
		return false
	}
	var letters, digits bool
	for i := 0; i < len(v); i++ {
		c := v[i]
		letters = letters || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		digits = digits || c >= '0' && c <= '9'
	}
	return letters && digits && entropy(v) >= 3.5
}

// entropy is the Shannon entropy of s in bits per character.
func entropy(s string) float64 {
	var counts [256]int
	for i := 0; i < len(s); i++ {
		counts[s[i]]++
	}
	h := 0.0
	n := float64(len(s))
	for _, c := range counts {
		if c > 0 {
			p := float64(c) / n
			h -= p * math.Log2(p)
		}
	}
	return h
}

// asciiLower folds ASCII letters only, so offsets stay those of data.
func asciiLower(data []byte) []byte {
	out := make([]byte, len(data))
	for i, c := range data {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		out[i] = c
	}
	return out
}
