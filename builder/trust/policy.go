// Package trust checks a build's input images against the spec's trust
// policy: where images may come from, whether each must be pinned by
// digest, and which public keys must have signed which images.
//
// Signatures are checked offline against the policy's keys, in the forms
// cosign writes: a Sigstore bundle attached as an OCI referrer (found
// through the referrers API or its sha256-<digest> tag fallback, or in the
// local store), and the older simple-signing manifest under the tag
// sha256-<digest>.sig.
package trust

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/bulkhead-dev/bulkhead/builder/config"
	"github.com/bulkhead-dev/bulkhead/builder/resolve"
	"github.com/bulkhead-dev/bulkhead/builder/sign"
)

// KeyID identifies a public key (see sign.PublicKey.ID); lock files record it.
type KeyID = string

// Policy is a spec's trust policy, with its keys loaded.
type Policy struct {
	// Allow lists the name prefixes images may come from; empty allows any.
	Allow []string
	// Pinned requires every reference to be pinned by digest.
	Pinned bool
	// PinnedPos is where the spec asked for Pinned, if it did.
	PinnedPos config.Pos
	// Rules say which keys must have signed which images.
	Rules []Rule
}

// Rule requires a signature by one of Keys on the images it matches.
type Rule struct {
	Image  string // an expanded repository name (no tag or digest), or
	Prefix string // a prefix of expanded names
	Keys   []*NamedKey
	Pos    config.Pos
}

// NamedKey is a policy key.
type NamedKey struct {
	Name string
	*sign.PublicKey
}

// NewPolicy reads a spec's trust section and loads the keys it names
// (paths relative to the spec file that names them). A nil section gives a
// policy that allows everything.
func NewPolicy(t *config.LegacyTrust) (*Policy, error) {
	p := &Policy{}
	if t == nil {
		return p, nil
	}
	p.Allow = append(p.Allow, t.Allow...)
	if t.Pinned != nil {
		p.Pinned, p.PinnedPos = *t.Pinned, t.PinnedPos
	}
	keys := map[string]*NamedKey{}
	for _, k := range t.Keys {
		path := k.Path
		if !filepath.IsAbs(path) && k.Pos.File != "" {
			path = filepath.Join(filepath.Dir(k.Pos.File), path)
		}
		pk, err := sign.LoadPublicKey(path)
		if err != nil {
			return nil, fmt.Errorf("%s: trust key %q: %w", k.Pos, k.Name, err)
		}
		if _, dup := keys[k.Name]; dup {
			return nil, fmt.Errorf("%s: trust key %q: defined twice", k.Pos, k.Name)
		}
		keys[k.Name] = &NamedKey{Name: k.Name, PublicKey: pk}
	}
	for _, r := range t.Require {
		rule := Rule{Prefix: r.Prefix, Pos: r.Pos}
		if r.Image != "" {
			repo, err := repository(r.Image)
			if err != nil {
				return nil, fmt.Errorf("%s: trust rule: image %q: %w", r.Pos, r.Image, err)
			}
			rule.Image = repo
		}
		for _, n := range r.Keys {
			k, ok := keys[n]
			if !ok {
				return nil, fmt.Errorf("%s: trust rule: no key named %q", r.Pos, n)
			}
			rule.Keys = append(rule.Keys, k)
		}
		p.Rules = append(p.Rules, rule)
	}
	return p, nil
}

// RequirePinned turns on the digest requirement, as locked and release
// builds do.
func (p *Policy) RequirePinned() { p.Pinned = true }

// Empty reports whether the policy checks nothing.
func (p *Policy) Empty() bool { return len(p.Allow) == 0 && !p.Pinned && len(p.Rules) == 0 }

// allowed reports whether an expanded name may be used.
func (p *Policy) allowed(expanded string) bool {
	if len(p.Allow) == 0 {
		return true
	}
	for _, a := range p.Allow {
		if strings.HasPrefix(expanded, a) {
			return true
		}
	}
	return false
}

// rule finds the rule for an expanded name: an image rule naming its
// repository, else the longest matching prefix.
func (p *Policy) rule(expanded string) *Rule {
	repo := stripTagDigest(expanded)
	var best *Rule
	for i := range p.Rules {
		r := &p.Rules[i]
		if r.Image != "" && r.Image == repo {
			return r
		}
		if r.Prefix != "" && strings.HasPrefix(expanded, r.Prefix) && (best == nil || len(r.Prefix) > len(best.Prefix)) {
			best = r
		}
	}
	return best
}

// repository expands an image name Docker-style and drops its tag and
// digest; oci: layout names keep their path.
func repository(s string) (string, error) {
	if strings.HasPrefix(s, resolve.LayoutPrefix) {
		return stripTagDigest(s), nil
	}
	ref, err := name.ParseReference(s)
	if err != nil {
		return "", err
	}
	reg := ref.Context().RegistryStr()
	if reg == name.DefaultRegistry {
		reg = "docker.io"
	}
	return reg + "/" + ref.Context().RepositoryStr(), nil
}

// stripTagDigest drops "@digest" and a ":tag" after the last slash.
func stripTagDigest(s string) string {
	if i := strings.LastIndex(s, "@"); i >= 0 {
		s = s[:i]
	}
	if i := strings.LastIndex(s, ":"); i > strings.LastIndex(s, "/") {
		s = s[:i]
	}
	return s
}

func keyNames(keys []*NamedKey) string {
	names := make([]string, len(keys))
	for i, k := range keys {
		names[i] = k.Name
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}
