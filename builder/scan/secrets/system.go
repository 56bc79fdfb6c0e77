package secrets

import (
	"bytes"
	"strings"
)

// Secrets a host gets from the build machine when a spec copies system
// files in (files: source: /etc/shadow, /proc/self/environ): password
// hashes and process environments.

// cryptPrefixes start the crypt(3) hashes of shadow files: MD5, SHA-256,
// SHA-512, yescrypt, gost-yescrypt, scrypt, bcrypt.
var cryptPrefixes = []string{"$1$", "$5$", "$6$", "$y$", "$gy$", "$7$", "$2a$", "$2b$", "$2y$"}

// passwordHash is the extent of a crypt(3) hash: $id$[params$]salt$hash,
// the hash at least 22 characters (the shortest, MD5's, has 22). The
// context is what precedes it on its line ("root:").
func passwordHash(data []byte, i int, _ string) (int, string) {
	n := 0
	for i+n < len(data) && isCryptChar(data[i+n]) {
		n++
	}
	parts := strings.Split(string(data[i:i+n]), "$")
	if len(parts) < 4 || len(parts[len(parts)-1]) < 22 {
		return 0, ""
	}
	lo := max(0, i-32)
	return n, string(data[lo+bytes.LastIndexByte(data[lo:i], '\n')+1 : i])
}

func isCryptChar(c byte) bool {
	return isWordChar(c) && c != '_' || c == '.' || c == '/' || c == '$' || c == '=' || c == ','
}

// maxEnviron bounds the data checked for an environment dump.
const maxEnviron = 1 << 20

// findEnvironDump finds a process environment as /proc/PID/environ holds
// it: NUL-terminated NAME=value entries and nothing else, at least three,
// with PATH, HOME or USER among them. The whole dump is the secret: one
// finding per distinct environment.
func findEnvironDump(data []byte) []ruleMatch {
	if len(data) > maxEnviron || bytes.IndexByte(data, 0) < 0 {
		return nil
	}
	entries := bytes.Split(bytes.TrimRight(data, "\x00"), []byte{0})
	var names []string
	common := false
	for _, e := range entries {
		name, _, ok := bytes.Cut(e, []byte("="))
		if !ok || !isEnvName(name) {
			return nil
		}
		names = append(names, string(name))
		common = common || string(name) == "PATH" || string(name) == "HOME" || string(name) == "USER"
	}
	if len(names) < 3 || !common {
		return nil
	}
	ctx := "environment " + strings.Join(names[:3], ", ") + "…: "
	return []ruleMatch{{"environment-dump", match{off: 0, secret: string(data), context: ctx}}}
}

func isEnvName(b []byte) bool {
	if len(b) == 0 || b[0] >= '0' && b[0] <= '9' {
		return false
	}
	for _, c := range b {
		if !isWordChar(c) {
			return false
		}
	}
	return true
}
