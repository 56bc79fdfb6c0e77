package resolve

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/bulkhead-dev/bulkhead/builder/config"
)

// LayoutPrefix starts a reference to a local OCI image layout:
// oci:PATH, oci:PATH:TAG or oci:PATH@sha256:HEX (config.ParseLayoutRef).
const LayoutPrefix = config.LayoutPrefix

// reference is a parsed spec reference.
type reference struct {
	raw  string // as written
	name string // fully expanded: the store entry name and Image.Name

	reg name.Reference // registry references only

	// Local OCI layouts only.
	dir string // absolute
	tag string // matched against the ref.name annotation

	digest *v1.Hash // set when the reference names a digest
}

func (r *reference) isLayout() bool { return r.reg == nil }

// parseRef parses a reference as written in a spec. Relative layout paths
// are taken relative to dir.
func parseRef(s, dir string, insecure map[string]bool) (*reference, error) {
	if strings.HasPrefix(s, LayoutPrefix) {
		return parseLayoutRef(s, dir)
	}
	ref, err := name.ParseReference(s)
	if err != nil {
		return nil, fmt.Errorf("parsing reference: %w", err)
	}
	if insecure[ref.Context().RegistryStr()] {
		if ref, err = name.ParseReference(s, name.Insecure); err != nil {
			return nil, fmt.Errorf("parsing reference: %w", err)
		}
	}
	r := &reference{raw: s, name: fullName(ref), reg: ref}
	if d, ok := ref.(name.Digest); ok {
		h, err := v1.NewHash(d.DigestStr())
		if err != nil {
			return nil, fmt.Errorf("parsing reference: %w", err)
		}
		r.digest = &h
	}
	return r, nil
}

func parseLayoutRef(s, dir string) (*reference, error) {
	lr, err := config.ParseLayoutRef(s)
	if err != nil {
		return nil, fmt.Errorf("parsing reference: %w", err)
	}
	r := &reference{raw: s, tag: lr.Tag, digest: lr.Digest}
	path := lr.Path
	if !filepath.IsAbs(path) {
		path = filepath.Join(dir, path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("parsing reference: %w", err)
	}
	r.dir = abs
	r.name = LayoutPrefix + abs
	switch {
	case r.digest != nil:
		r.name += "@" + r.digest.String()
	case r.tag != "":
		r.name += ":" + r.tag
	}
	return r, nil
}

// atDigest is the reference pinned to digest h (same repository or layout).
func (r *reference) atDigest(h v1.Hash) *reference {
	p := *r
	p.digest = &h
	p.tag = ""
	if r.isLayout() {
		p.name = LayoutPrefix + r.dir + "@" + h.String()
		return &p
	}
	p.reg = r.reg.Context().Digest(h.String())
	p.name = fullName(p.reg)
	return &p
}
