package config

import (
	"bytes"
	"strings"
)

// yaml.v3 reports a syntax error at the start of the collection it was
// parsing (its "context mark"), not where the offending token is: an
// indentation mistake on line 10 reads "line 7". syntaxPos finds the line
// itself: the shortest prefix of whole lines that fails with the same
// message ends at the offending line, since a prefix cut at a line end is
// valid YAML until that line is reached.

// maxPosProbes bounds the prefix parses one error costs (a binary search
// over the lines after the reported one), and maxPosSearch the size of a
// file searched at all: past it, yaml.v3's line stands.
const (
	maxPosProbes = 32
	maxPosSearch = 1 << 20
)

// syntaxPos returns where err (from parsing data) really is: the line of
// the offending token, and its column.
func syntaxPos(name string, data []byte, err error) Pos {
	p := yamlErrorPos(name, err)
	msg := yamlErrorMsg(err)
	lines := splitLines(data)
	fails := func(n int) bool {
		_, e := parseYAML(bytes.Join(lines[:n], nil))
		return e != nil && yamlErrorMsg(e) == msg
	}
	lo, hi := min(p.Line-1, len(lines)), len(lines) // fails(hi) holds: it is the whole file
	if len(data) > maxPosSearch || lo < 0 || hi == 0 || fails(lo) {
		return p
	}
	for probes := 0; hi-lo > 1 && probes < maxPosProbes; probes++ {
		mid := lo + (hi-lo)/2
		if fails(mid) {
			hi = mid
		} else {
			lo = mid
		}
	}
	if hi-lo > 1 {
		return p
	}
	return Pos{File: name, Line: hi, Col: offendingCol(string(lines[hi-1]), msg)}
}

// splitLines splits data after each newline, keeping them.
func splitLines(data []byte) [][]byte {
	lines := bytes.SplitAfter(data, []byte("\n"))
	if len(lines) > 0 && len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1]
	}
	return lines
}

// offendingCol is the 1-based column of the token msg complains about on
// line: a tab, a colon, or else the line's first character.
func offendingCol(line, msg string) int {
	indent := len(line) - len(strings.TrimLeft(line, " \t"))
	switch {
	case strings.Contains(msg, "tab character"):
		if i := strings.IndexByte(line, '\t'); i >= 0 {
			return i + 1
		}
	case strings.Contains(msg, "mapping values are not allowed"):
		for i := indent; i < len(line); i++ {
			if line[i] == ':' && (i+1 == len(line) || strings.ContainsRune(" \t\r\n", rune(line[i+1]))) {
				return i + 1
			}
		}
	}
	return indent + 1
}

// indentHint explains the usual cause of an error in an indented block.
func indentHint(msg string) string {
	for _, s := range []string{"tab character", "did not find expected", "mapping values are not allowed", "could not find expected ':'"} {
		if strings.Contains(msg, s) {
			if s == "tab character" {
				return " (indent with spaces, not tabs)"
			}
			return " (check this line's indentation against the lines above)"
		}
	}
	return ""
}
