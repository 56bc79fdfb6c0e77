package kernelcheck

import "strings"

// parseCmdline splits a kernel command line into parameters; a later
// value wins, as in the kernel. A parameter without "=" maps to Flag.
// Quoted values ("a b") keep their spaces. Everything after "--" belongs
// to init and is ignored.
func parseCmdline(s string) map[string]string {
	params := map[string]string{}
	for _, word := range splitCmdline(s) {
		if word == "--" {
			break
		}
		key, value, ok := strings.Cut(word, "=")
		if !ok {
			value = Flag
		}
		// The kernel treats - and _ alike in parameter names.
		params[strings.ReplaceAll(key, "-", "_")] = strings.Trim(value, `"`)
	}
	return params
}

func splitCmdline(s string) []string {
	var words []string
	var cur strings.Builder
	quoted := false
	for _, r := range s {
		switch {
		case r == '"':
			quoted = !quoted
			cur.WriteRune(r)
		case (r == ' ' || r == '\t' || r == '\n') && !quoted:
			if cur.Len() > 0 {
				words = append(words, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteRune(r)
		}
	}
	if cur.Len() > 0 {
		words = append(words, cur.String())
	}
	return words
}
