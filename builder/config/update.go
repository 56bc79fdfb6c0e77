package config

import (
	"fmt"
	"path"
	"reflect"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Update is bulkhead's `update:` section: who may sign update bundles for
// this host and what the bundles it builds allow.
//
//	update:
//	  keys: [keys/update.pub]   # PEM public keys, relative to the spec
//	  expires: 720h             # or 2027-06-30, or 2027-06-30T12:00:00Z
//	  from: 1.0.0               # oldest running version a bundle applies on
//	  downgrade: [1.3.0]        # running versions a bundle may replace though older
//
// The keys are baked into the verified root, so a host accepts a new set
// only through a bundle signed by a key it already trusts.
type Update struct {
	// Public keys (files, relative to the spec) whose signed bundles the host
	// accepts; baked into the verified root.
	Keys []string `json:"keys,omitempty" yaml:"keys,omitempty"`
	// Expires is when hosts stop accepting the bundle: a time (RFC 3339)
	// or date, or a duration counted from the build time
	// (SOURCE_DATE_EPOCH), never from the clock.
	Expires string `json:"expires,omitempty" yaml:"expires,omitempty"`
	// The oldest running version the bundle may be applied on.
	From string `json:"from,omitempty" yaml:"from,omitempty"`
	// Running versions the bundle may replace though they are newer.
	Downgrade []string `json:"downgrade,omitempty" yaml:"downgrade,omitempty"`
	// Credentials is where the host finds the registry credentials for
	// pulls (an absolute path under /var, put there by the operator):
	// only the path is baked into the root, never the file.
	Credentials string `json:"credentials,omitempty" yaml:"credentials,omitempty"`

	Pos        Pos   `json:"-" yaml:"-"`
	KeysPos    []Pos `json:"-" yaml:"-"` // of each key
	ExpiresPos Pos   `json:"-" yaml:"-"`
}

func decodeUpdate(d *decoder, n *yaml.Node, s *Spec) {
	var v Update
	set := d.structure(n, reflect.ValueOf(&v).Elem(), "update")
	if set == nil {
		return
	}
	v.Pos = d.pos(n)
	if kn := resolve(set["keys"]); kn != nil && kn.Kind == yaml.SequenceNode && len(kn.Content) == len(v.Keys) {
		for i, k := range v.Keys {
			v.KeysPos = append(v.KeysPos, d.pos(kn.Content[i]))
			if strings.TrimSpace(k) == "" {
				d.errorf(kn.Content[i], "update key: empty path")
			}
		}
	}
	if vn := set["expires"]; vn != nil {
		v.ExpiresPos = d.pos(vn)
		if _, err := ParseExpiry(v.Expires, 0); err != nil {
			d.errorf(vn, "expires: %v", err)
		}
	}
	if vn := set["from"]; vn != nil && !validVersion(v.From) {
		d.errorf(vn, "from: %q may hold only letters, digits and . _ - ~ ^", v.From)
	}
	if dn := resolve(set["downgrade"]); dn != nil && dn.Kind == yaml.SequenceNode && len(dn.Content) == len(v.Downgrade) {
		for i, ver := range v.Downgrade {
			if !validVersion(ver) {
				d.errorf(dn.Content[i], "downgrade: %q may hold only letters, digits and . _ - ~ ^", ver)
			}
		}
	}
	if vn := set["credentials"]; vn != nil && !validCredentials(v.Credentials) {
		d.errorf(vn, "credentials: %q is not an absolute, clean path under /var (the root image never holds credentials)", v.Credentials)
	}
	s.Update = &v
}

func validCredentials(p string) bool {
	return strings.HasPrefix(p, "/var/") && path.Clean(p) == p && !strings.ContainsAny(p, "\n\x00")
}

// ParseExpiry reads an expiry: an RFC 3339 time, a date (YYYY-MM-DD,
// midnight UTC), or a Go duration added to epoch (Unix seconds).
func ParseExpiry(s string, epoch int64) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t.UTC(), nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return time.Unix(epoch, 0).Add(d).UTC(), nil
	}
	return time.Time{}, fmt.Errorf("expected a time (2027-06-30T12:00:00Z), a date (2027-06-30) or a positive duration (720h), got %q", s)
}
