package config

import (
	"fmt"
	"regexp"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// LayoutPrefix starts a reference to a local OCI image layout:
// oci:PATH, oci:PATH:TAG or oci:PATH@sha256:HEX, PATH relative to the
// spec's directory unless absolute.
const LayoutPrefix = "oci:"

// LayoutRef is a parsed oci: reference.
type LayoutRef struct {
	Path   string   // as written: relative or absolute
	Tag    string   // "" when none
	Digest *v1.Hash // nil when none
}

var layoutTagRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`)

// ParseLayoutRef parses an oci: reference. A ":" after the last "/" starts
// the tag ("oci:x:v1"); "@" starts the digest.
func ParseLayoutRef(s string) (LayoutRef, error) {
	path, ok := strings.CutPrefix(s, LayoutPrefix)
	if !ok {
		return LayoutRef{}, fmt.Errorf("%q does not start with %q", s, LayoutPrefix)
	}
	var r LayoutRef
	if i := strings.LastIndex(path, "@"); i >= 0 {
		h, err := v1.NewHash(path[i+1:])
		if err != nil {
			return LayoutRef{}, fmt.Errorf("digest %q: %w", path[i+1:], err)
		}
		r.Digest, path = &h, path[:i]
	} else if i := strings.LastIndex(path, ":"); i > strings.LastIndex(path, "/") {
		r.Tag, path = path[i+1:], path[:i]
		if !layoutTagRE.MatchString(r.Tag) {
			return LayoutRef{}, fmt.Errorf("tag %q: use letters, digits, '_', '.' and '-'", r.Tag)
		}
	}
	if path == "" {
		return LayoutRef{}, fmt.Errorf("no layout path after %q", LayoutPrefix)
	}
	r.Path = path
	return r, nil
}
