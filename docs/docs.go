// Package docs holds the generated spec reference (spec.md) and the JSON
// Schema of host specs (spec.schema.json), embedded so the binary can
// hand the schema to editors (bulkhead schema). builder/config's
// TestSpecReference keeps both in step with the Go types.
package docs

import _ "embed"

// Schema is the JSON Schema (draft-07) of a host spec.
//
//go:embed spec.schema.json
var Schema []byte
