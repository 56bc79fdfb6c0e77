package config

import (
	"regexp"
	"strings"
)

// blockHeaderRE matches a line that opens a block scalar ("key: |",
// "- >-", "key: |2+" ...), ignoring a trailing comment.
var blockHeaderRE = regexp.MustCompile(`(^|[:\-]\s)\s*[|>][0-9+\-]*\s*(#.*)?$`)

// repairBlockComments works around a mistake found in real LinuxKit specs
// (static-ip.yml): a "#" line at column 0 inside an indented block scalar,
// which ends the scalar and makes the rest of the file invalid YAML. Such a
// line is indented to the block's level, keeping it as part of the content,
// and every line keeps its number. It returns nil when nothing changed.
func repairBlockComments(data []byte) []byte {
	lines := strings.Split(string(data), "\n")
	changed := false
	for i := 0; i < len(lines); i++ {
		if !blockHeaderRE.MatchString(strings.TrimRight(lines[i], " \t\r")) {
			continue
		}
		indent := blockIndent(lines, i+1)
		if indent <= indentOf(lines[i]) {
			continue
		}
		j := i + 1
		for ; j < len(lines); j++ {
			l := lines[j]
			switch {
			case strings.TrimSpace(l) == "":
			case indentOf(l) >= indent:
			case strings.HasPrefix(l, "#") && blockIndent(lines, j+1) >= indent:
				lines[j] = strings.Repeat(" ", indent) + l
				changed = true
			default:
				i = j - 1
				j = len(lines) + 1
			}
		}
	}
	if !changed {
		return nil
	}
	return []byte(strings.Join(lines, "\n"))
}

// blockIndent is the indentation of the first line from i on that is neither
// blank nor a column-0 comment; -1 if there is none.
func blockIndent(lines []string, i int) int {
	for ; i < len(lines); i++ {
		l := lines[i]
		if strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#") {
			continue
		}
		return indentOf(l)
	}
	return -1
}

func indentOf(l string) int {
	return len(l) - len(strings.TrimLeft(l, " "))
}
