package secrets

import (
	"bytes"
	"encoding/base64"
	"hash/crc32"
	"strings"
)

// anchoredRule finds secrets that begin with a distinctive literal: the
// literal is searched for (fast), and only there is the rest checked.
type anchoredRule struct {
	name     string
	prefixes []string
	// extent returns the length of the secret starting at data[i] (the
	// prefix included), and the context to show, or 0 for no match.
	extent func(data []byte, i int, prefix string) (n int, context string)
}

var anchored = []anchoredRule{
	{name: "private-key", prefixes: []string{"-----BEGIN "}, extent: privateKey},
	{name: "aws-access-key-id", prefixes: []string{"AKIA", "ASIA"}, extent: awsKeyID},
	{name: "github-token", prefixes: []string{"ghp_", "gho_", "ghu_", "ghs_", "ghr_"}, extent: githubToken},
	{name: "github-token", prefixes: []string{"github_pat_"}, extent: run(82, 82, isTokenChar)},
	{name: "gitlab-token", prefixes: []string{"glpat-"}, extent: run(20, 64, isTokenChar)},
	{name: "slack-token", prefixes: []string{"xoxb-", "xoxp-", "xoxa-", "xoxr-", "xoxs-", "xoxe-"}, extent: run(20, 255, isTokenChar)},
	{name: "slack-webhook", prefixes: []string{"hooks.slack.com/services/T"}, extent: run(20, 120, isPathChar)},
	{name: "google-api-key", prefixes: []string{"AIza"}, extent: run(35, 35, isTokenChar)},
	{name: "jwt", prefixes: []string{"eyJ"}, extent: jwt},
	{name: "password-hash", prefixes: cryptPrefixes, extent: passwordHash},
}

func (r anchoredRule) find(data []byte) []ruleMatch {
	var out []ruleMatch
	for _, p := range r.prefixes {
		pb := []byte(p)
		for i := 0; ; {
			j := bytes.Index(data[i:], pb)
			if j < 0 {
				break
			}
			at := i + j
			i = at + len(pb)
			if at > 0 && isWordChar(data[at-1]) && r.name != "private-key" && r.name != "slack-webhook" {
				continue
			}
			n, ctx := r.extent(data, at, p)
			if n == 0 {
				continue
			}
			secret := string(data[at : at+n])
			if r.name == "private-key" {
				// The key's body is the secret; the header is context.
				secret = strings.TrimSpace(secret[len(ctx):])
			}
			if isExample(secret) {
				continue
			}
			out = append(out, ruleMatch{r.name, match{off: at, secret: secret, context: ctx}})
			i = at + n
		}
	}
	return out
}

// documented example credentials (AWS's, GitHub's) are not findings.
func isExample(s string) bool {
	return strings.Contains(s, "EXAMPLE") || strings.Contains(s, "example") || strings.Contains(s, "XXXXXXXX") || strings.Contains(s, "xxxxxxxx")
}

func isWordChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}

func isTokenChar(c byte) bool { return isWordChar(c) || c == '-' }
func isPathChar(c byte) bool  { return isTokenChar(c) || c == '/' }
func isBase64(c byte) bool    { return isWordChar(c) && c != '_' || c == '+' || c == '/' || c == '=' }

// run accepts the prefix followed by between lo and hi characters of class
// ok, not followed by another such character.
func run(lo, hi int, ok func(byte) bool) func([]byte, int, string) (int, string) {
	return func(data []byte, i int, prefix string) (int, string) {
		s := i + len(prefix)
		e := s
		for e < len(data) && e-s < hi && ok(data[e]) {
			e++
		}
		if e-s < lo || (e < len(data) && ok(data[e])) {
			return 0, ""
		}
		return e - i, ""
	}
}

func awsKeyID(data []byte, i int, prefix string) (int, string) {
	s := i + len(prefix)
	if s+16 > len(data) {
		return 0, ""
	}
	for _, c := range data[s : s+16] {
		if !(c >= 'A' && c <= 'Z' || c >= '2' && c <= '7') {
			return 0, ""
		}
	}
	if s+16 < len(data) && isWordChar(data[s+16]) {
		return 0, ""
	}
	return 20, ""
}

// githubToken accepts a classic token: prefix, 30 random characters and a
// base62 CRC32 checksum of them in 6 characters. Made-up tokens (in
// documentation) fail the checksum.
func githubToken(data []byte, i int, prefix string) (int, string) {
	n, _ := run(36, 36, isWordChar)(data, i, prefix)
	if n == 0 {
		return 0, ""
	}
	body := data[i+len(prefix) : i+n]
	if strings.IndexByte(string(body), '_') >= 0 {
		return 0, ""
	}
	if base62(crc32.ChecksumIEEE(body[:30]), 6) != string(body[30:]) {
		return 0, ""
	}
	return n, ""
}

func base62(n uint32, width int) string {
	const digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	b := make([]byte, width)
	for i := width - 1; i >= 0; i-- {
		b[i] = digits[n%62]
		n /= 62
	}
	return string(b)
}

// GitHubChecksum returns the 6-character checksum a classic GitHub token
// with random part body (30 characters) ends with. For tests and tools
// that make valid-looking tokens.
func GitHubChecksum(body string) string { return base62(crc32.ChecksumIEEE([]byte(body)), 6) }

// privateKey accepts a PEM private key block (any PRIVATE KEY type) with
// a base64 body of real length. Public keys and certificates use other
// labels and never match.
func privateKey(data []byte, i int, _ string) (int, string) {
	window := data[i:min(len(data), i+64<<10)]
	nl := bytes.IndexByte(window, '\n')
	if nl < 0 {
		return 0, ""
	}
	header := strings.TrimSpace(string(window[:nl]))
	if !strings.HasSuffix(header, "PRIVATE KEY-----") && !strings.HasSuffix(header, "PRIVATE KEY BLOCK-----") {
		return 0, ""
	}
	end := bytes.Index(window, []byte("-----END "))
	if end < 0 {
		return 0, ""
	}
	body := window[nl:end]
	b64 := 0
	for _, line := range bytes.Split(body, []byte{'\n'}) {
		line = bytes.TrimSpace(line)
		if bytes.IndexByte(line, ':') >= 0 { // Proc-Type:, DEK-Info: headers
			continue
		}
		for _, c := range line {
			if !isBase64(c) {
				return 0, ""
			}
		}
		b64 += len(line)
	}
	if b64 < 64 {
		return 0, ""
	}
	return end, header + " "
}

// jwt accepts header.payload.signature whose header decodes to JSON
// naming an algorithm.
func jwt(data []byte, i int, _ string) (int, string) {
	parts := 0
	e := i
	start := i
	var header []byte
	for e < len(data) && (isTokenChar(data[e]) || data[e] == '.') {
		if data[e] == '.' {
			if parts == 0 {
				header = data[start:e]
			}
			parts++
		}
		e++
	}
	if parts != 2 || e-i < 40 || data[e-1] == '.' {
		return 0, ""
	}
	h, err := base64.RawURLEncoding.DecodeString(string(header))
	if err != nil || !bytes.Contains(h, []byte(`"alg"`)) {
		return 0, ""
	}
	return e - i, ""
}
