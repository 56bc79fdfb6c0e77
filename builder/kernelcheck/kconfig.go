package kernelcheck

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"
)

// Kconfig is a parsed .config: symbol (CONFIG_FOO) to value ("y", "m", a
// number, or a string without its quotes). A symbol written as
// "# CONFIG_FOO is not set" maps to NotSet; a symbol the file does not
// mention is absent.
type Kconfig map[string]string

// ParseKconfig reads a .config file. It fails on a file with no CONFIG_
// line at all, which is not a kernel config.
func ParseKconfig(data []byte) (Kconfig, error) {
	k := Kconfig{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if name, ok := notSetLine(line); ok {
			k[name] = NotSet
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		if !ok || !strings.HasPrefix(name, "CONFIG_") {
			continue
		}
		if len(value) >= 2 && value[0] == '"' && value[len(value)-1] == '"' {
			value = strings.ReplaceAll(value[1:len(value)-1], `\"`, `"`)
		}
		k[name] = value
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading kernel config: %w", err)
	}
	if len(k) == 0 {
		return nil, fmt.Errorf("reading kernel config: no CONFIG_ lines")
	}
	return k, nil
}

// notSetLine recognises "# CONFIG_FOO is not set".
func notSetLine(line string) (string, bool) {
	rest, ok := strings.CutPrefix(line, "# ")
	if !ok {
		return "", false
	}
	name, ok := strings.CutSuffix(rest, " "+NotSet)
	if !ok || !strings.HasPrefix(name, "CONFIG_") || strings.ContainsAny(name, " =") {
		return "", false
	}
	return name, true
}

// looksLikeKconfig tells a text .config from other data.
func looksLikeKconfig(data []byte) bool {
	head := data[:min(len(data), 64*1024)]
	return bytes.Contains(head, []byte("\nCONFIG_")) || bytes.HasPrefix(head, []byte("CONFIG_")) ||
		bytes.Contains(head, []byte("# CONFIG_"))
}
