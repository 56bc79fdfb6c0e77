package secrets

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"path"
	"strings"

	"gopkg.in/yaml.v3"
)

// maxStructured bounds the configs parsed as JSON or YAML.
const maxStructured = 1 << 20

// credentialKeys mark config keys whose string values are credentials.
var credentialKeys = []string{"password", "passwd", "secret", "token", "apikey", "api_key", "api-key",
	"accesskey", "access_key", "privatekey", "private_key", "client_secret", "credential", "auth"}

// findStructured parses JSON and YAML configs and reports credentials a
// line-oriented rule misses: values under credential keys (in any
// nesting, quoted or not, across lines), and docker config auths
// (base64 user:password).
func findStructured(where string, data []byte) []ruleMatch {
	if len(data) > maxStructured {
		return nil
	}
	var doc any
	switch ext := strings.ToLower(path.Ext(where)); {
	case ext == ".json" || looksJSON(data):
		if json.Unmarshal(data, &doc) != nil {
			return nil
		}
	case ext == ".yaml" || ext == ".yml":
		if yaml.Unmarshal(data, &doc) != nil {
			return nil
		}
	default:
		return nil
	}
	var out []ruleMatch
	walk(doc, "", 0, func(key, value string) {
		if m, ok := structuredMatch(data, key, value); ok {
			out = append(out, m)
		}
	})
	return out
}

func looksJSON(data []byte) bool {
	t := bytes.TrimSpace(data[:min(len(data), 64)])
	return len(t) > 0 && t[0] == '{'
}

// walk calls fn with each string value and the key that holds it.
func walk(v any, key string, depth int, fn func(key, value string)) {
	if depth > 64 {
		return
	}
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			walk(e, k, depth+1, fn)
		}
	case []any:
		for _, e := range x {
			walk(e, key, depth+1, fn)
		}
	case string:
		fn(key, x)
	}
}

// structuredMatch judges one key and value.
func structuredMatch(data []byte, key, value string) (ruleMatch, bool) {
	if m, ok := configPrivateKey(data, key, value); ok {
		return m, true
	}
	lk := strings.ToLower(key)
	if !hasCredentialKey(lk) || strings.HasSuffix(lk, "file") || strings.HasSuffix(lk, "path") ||
		strings.HasSuffix(lk, "_url") || strings.HasSuffix(lk, "endpoint") || strings.HasSuffix(lk, "type") {
		return ruleMatch{}, false
	}
	off := bytes.Index(data, []byte(value))
	if off < 0 {
		return ruleMatch{}, false // escaped in the source: leave it to the text rules
	}
	m := ruleMatch{rule: "config-credential", match: match{off: off, secret: value, context: key + ": "}}
	if lk == "auth" {
		if b, err := base64.StdEncoding.DecodeString(value); err == nil && bytes.IndexByte(b, ':') > 0 && !placeholderValue(string(b[bytes.IndexByte(b, ':')+1:])) {
			m.rule = "registry-auth"
			return m, true
		}
		return ruleMatch{}, false
	}
	return m, credentialValue(value)
}

func hasCredentialKey(lk string) bool {
	for _, k := range credentialKeys {
		if strings.Contains(lk, k) {
			return true
		}
	}
	return false
}

// credentialValue says a config value looks like a real credential: long
// enough, one token, no placeholder, template or reference, and not a
// word a person wrote.
func credentialValue(v string) bool {
	if len(v) < 8 || len(v) > 4096 || placeholderValue(v) || strings.ContainsAny(v, " \t\n<>") {
		return false
	}
	if strings.HasPrefix(v, "/") || strings.Contains(v, "://") || strings.HasPrefix(v, "env:") {
		return false
	}
	var classes [4]bool
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c >= 'a' && c <= 'z':
			classes[0] = true
		case c >= 'A' && c <= 'Z':
			classes[1] = true
		case c >= '0' && c <= '9':
			classes[2] = true
		default:
			classes[3] = true
		}
	}
	n := 0
	for _, c := range classes {
		if c {
			n++
		}
	}
	return n >= 3 && entropy(v) >= 3.0
}

// pemBase64 is "-----BEGIN" in base64, as a whole PEM file encodes.
const pemBase64 = "LS0tLS1CRUdJTi"

// findBase64PEM finds base64 that wraps a PEM private key (kubeconfig's
// client-key-data, a Helm value, an environment variable): decoded, it
// must pass the private-key rule.
func findBase64PEM(data []byte) []ruleMatch {
	var out []ruleMatch
	for i := 0; ; {
		j := bytes.Index(data[i:], []byte(pemBase64))
		if j < 0 {
			return out
		}
		at := i + j
		e := at
		for e < len(data) && e-at < 64<<10 && isBase64(data[e]) {
			e++
		}
		i = e
		dec, err := base64.StdEncoding.DecodeString(string(data[at:e]))
		if err != nil {
			continue
		}
		n, header := privateKey(dec, 0, "")
		if n == 0 || isExample(string(dec[:n])) {
			continue
		}
		out = append(out, ruleMatch{"private-key-base64", match{off: at, secret: string(data[at:e]), context: "base64(" + strings.TrimSpace(header) + ") "}})
	}
}

// configPrivateKey finds a PEM private key held in a config value, where
// the text has it escaped (a GCP service account key's "private_key").
func configPrivateKey(data []byte, key, value string) (ruleMatch, bool) {
	i := strings.Index(value, "-----BEGIN ")
	if i < 0 {
		return ruleMatch{}, false
	}
	n, header := privateKey([]byte(value), i, "")
	if n == 0 || isExample(value[i:i+n]) {
		return ruleMatch{}, false
	}
	off := bytes.Index(data, []byte(value[i:i+len(header)-1]))
	if off < 0 {
		off = max(0, bytes.Index(data, []byte(key)))
	}
	secret := strings.TrimSpace(value[i+len(header) : i+n])
	return ruleMatch{rule: "private-key", match: match{off: off, secret: secret, context: key + ": " + header}}, true
}
