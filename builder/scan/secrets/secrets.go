// Package secrets finds credentials in file contents and strings: private
// keys (PEM, and PEM wrapped in base64), cloud and SaaS credentials,
// tokens, credentials in URLs, high-entropy secret assignments,
// credentials in JSON and YAML configs, and everything gitleaks' default
// rule set finds (its module, run as a library: same rules, same
// allowlists). Findings carry a redacted excerpt and a
// fingerprint that does not depend on where the secret was found, so an
// allowlist can accept a false positive everywhere at once. Public keys,
// certificates and the documented example credentials are not findings.
package secrets

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
)

// Finding is one secret found.
type Finding struct {
	// Rule names what was found: "private-key", "aws-access-key-id", …
	Rule string `json:"rule"`
	// Where is the file or config field holding it.
	Where string `json:"where"`
	// Line is the 1-based line number in the file, 0 when not known.
	Line int `json:"line,omitempty"`
	// Excerpt shows the match with the secret redacted to its first four
	// characters.
	Excerpt string `json:"excerpt"`
	// Fingerprint is a hex prefix of sha256(rule, secret).
	Fingerprint string `json:"fingerprint"`
}

// Fingerprint identifies a secret under a rule, independently of where
// it is.
func Fingerprint(rule, secret string) string {
	h := sha256.Sum256([]byte(rule + "\x00" + secret))
	return hex.EncodeToString(h[:8])
}

// Redact keeps the first four characters of s.
func Redact(s string) string {
	if len(s) <= 4 {
		return "****"
	}
	return s[:4] + "****"
}

// match is a rule's hit: the secret and its excerpt (context before it).
type match struct {
	off     int // offset of the match in the data
	secret  string
	context string // text shown before the redacted secret
}

// IsText says whether data (or its first part) looks like text: no NUL in
// the first 8000 bytes, as git decides.
func IsText(data []byte) bool {
	return bytes.IndexByte(data[:min(len(data), 8000)], 0) < 0
}

// Scan finds the secrets in data, which is the content of where. text says
// the data is text (see IsText): only text gets the rules that look at
// assignments and URLs, the structured checks of JSON and YAML configs and
// gitleaks' default rule set; every file gets the rules with distinctive
// prefixes and the base64-wrapped private keys. Findings are ordered by
// offset.
func Scan(where string, data []byte, text bool) []Finding {
	var ms []ruleMatch
	for _, r := range anchored {
		ms = append(ms, r.find(data)...)
	}
	ms = append(ms, findEnvironDump(data)...)
	ms = append(ms, findBase64PEM(data)...)
	if text {
		// The most specific name wins where findings overlap: gitleaks'
		// named rules, then ours for URLs and assignments, the structured
		// checks, and last gitleaks' generic rule.
		specific, generic := splitGeneric(findGitleaks(where, data))
		for _, set := range [][]ruleMatch{specific, findURLCredentials(data), findAssignments(data), findStructured(where, data), generic} {
			for _, m := range set {
				if !overlaps(ms, m) && !hasTokenPrefix(m.secret) {
					ms = append(ms, m)
				}
			}
		}
	}
	return findings(where, data, ms)
}

// ScanString scans a string that is not a file: an environment variable, a
// label, a history entry, the kernel command line.
func ScanString(where, s string) []Finding {
	f := Scan(where, []byte(s), true)
	for i := range f {
		f[i].Line = 0
	}
	return f
}

type ruleMatch struct {
	rule string
	match
}

func findings(where string, data []byte, ms []ruleMatch) []Finding {
	slices.SortStableFunc(ms, func(a, b ruleMatch) int { return a.off - b.off })
	var out []Finding
	seen := map[string]bool{}
	line, lineOff := 1, 0
	for _, m := range ms {
		fp := Fingerprint(m.rule, m.secret)
		if seen[fp] {
			continue
		}
		seen[fp] = true
		line += bytes.Count(data[lineOff:m.off], []byte{'\n'})
		lineOff = m.off
		out = append(out, Finding{
			Rule: m.rule, Where: where, Line: line, Fingerprint: fp,
			Excerpt: printable(m.context) + Redact(m.secret),
		})
	}
	return out
}

// printable keeps an excerpt on one line and short.
func printable(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > 40 {
		s = "…" + s[len(s)-40:]
	}
	return s
}

// overlaps says m's secret overlaps one a distinctive rule already found.
func overlaps(ms []ruleMatch, m ruleMatch) bool {
	for _, o := range ms {
		if m.off < o.off+len(o.secret) && o.off < m.off+len(m.secret) {
			return true
		}
	}
	return false
}

// hasTokenPrefix says a value starts like a token a distinctive rule
// judges: when that rule rejected it (a bad checksum), it is no secret.
func hasTokenPrefix(v string) bool {
	for _, r := range anchored {
		for _, p := range r.prefixes {
			if strings.HasPrefix(v, p) {
				return true
			}
		}
	}
	return false
}
