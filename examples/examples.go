// Package examples embeds the example host specs, so bulkhead init can
// write one as a starting point. CI builds and boots each of them.
package examples

import (
	"embed"
	"io/fs"
	"sort"
	"strings"
)

//go:embed *.yml
var specs embed.FS

// Names lists the examples: minimal, services, hardened, ...
func Names() []string {
	entries, _ := fs.ReadDir(specs, ".")
	var out []string
	for _, e := range entries {
		out = append(out, strings.TrimSuffix(e.Name(), ".yml"))
	}
	sort.Strings(out)
	return out
}

// Spec returns the example's text, and whether there is one by that name.
func Spec(name string) ([]byte, bool) {
	b, err := specs.ReadFile(name + ".yml")
	return b, err == nil
}
