package config

import (
	"gopkg.in/yaml.v3"
)

// bulkhead's trust policy shares the `trust:` mapping with LinuxKit's legacy
// org and image keys (which stay accepted and ignored):
//
//	trust:
//	  allow: [registry.example.com/bulkhead/, "oci:"]  # reference prefixes
//	  pinned: true                                     # every image pinned by digest
//	  keys:
//	    - name: release
//	      path: keys/release.pub                       # PEM, relative to the spec
//	  require:
//	    - prefix: registry.example.com/bulkhead/       # or image: NAME
//	      keys: [release]
//
// The trust package (builder/trust) turns it into a policy and checks it.

// TrustKey is a named public key of the trust policy.
type TrustKey struct {
	// The name trust rules use for the key.
	Name string `json:"name" yaml:"name"`
	// Path is a PEM public key file, relative to the spec's directory.
	Path string `json:"path" yaml:"path"`

	Pos Pos `json:"-" yaml:"-"`
}

// TrustRule requires a signature, by one of Keys, on the image named Image
// (expanded Docker-style, tag and digest ignored) or on every image whose
// expanded name starts with Prefix.
type TrustRule struct {
	// The image (expanded name) the rule covers.
	Image string `json:"image,omitempty" yaml:"image,omitempty"`
	// The reference prefix the rule covers.
	Prefix string `json:"prefix,omitempty" yaml:"prefix,omitempty"`
	// Names of keys (trust.keys) that must all have signed the image.
	Keys []string `json:"keys" yaml:"keys"`

	Pos Pos `json:"-" yaml:"-"`
}

// checkTrust records positions in the trust section and checks what one
// file can check on its own.
func (d *decoder) checkTrust(n *yaml.Node, set map[string]*yaml.Node, t *LegacyTrust) {
	t.Pos = d.pos(resolve(n))
	if v := set["pinned"]; v != nil {
		t.PinnedPos = d.pos(resolve(v))
	}
	if v := resolve(set["keys"]); v != nil && v.Kind == yaml.SequenceNode && len(v.Content) == len(t.Keys) {
		seen := map[string]bool{}
		for i := range t.Keys {
			k := &t.Keys[i]
			k.Pos = d.pos(resolve(v.Content[i]))
			switch {
			case k.Name == "" || k.Path == "":
				d.errorf(v.Content[i], "trust key: needs a name and a path")
			case seen[k.Name]:
				d.errorf(v.Content[i], "trust key %s: defined twice", quote(k.Name))
			}
			seen[k.Name] = true
		}
	}
	if v := resolve(set["require"]); v != nil && v.Kind == yaml.SequenceNode && len(v.Content) == len(t.Require) {
		for i := range t.Require {
			r := &t.Require[i]
			r.Pos = d.pos(resolve(v.Content[i]))
			if (r.Image == "") == (r.Prefix == "") {
				d.errorf(v.Content[i], "trust rule: needs exactly one of image and prefix")
			}
			if len(r.Keys) == 0 {
				d.errorf(v.Content[i], "trust rule: needs keys")
			}
		}
	}
}

func mergeTrustPolicy(dst, src *LegacyTrust) {
	dst.Allow = append(dst.Allow, src.Allow...)
	if src.Pinned != nil {
		dst.Pinned, dst.PinnedPos = src.Pinned, src.PinnedPos
	}
	dst.Keys = append(dst.Keys, src.Keys...)
	dst.Require = append(dst.Require, src.Require...)
	if dst.Pos == (Pos{}) {
		dst.Pos = src.Pos
	}
}
