// Package kernel holds bulkhead's kernel policy data: the rules `bulkhead
// kernel check` applies (rules/*.yml), embedded so the binary carries them.
package kernel

import (
	"embed"
	"io/fs"
)

//go:embed rules/*.yml
var rules embed.FS

// Rules is the rules directory: one YAML file per category.
func Rules() fs.FS {
	sub, err := fs.Sub(rules, "rules")
	if err != nil {
		panic(err) // the directory is embedded above; it always exists
	}
	return sub
}
