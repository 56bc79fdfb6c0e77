package config

import (
	"net"
	"reflect"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// API is bulkhead's `api:` section: the host API the init serves (TLS 1.3,
// only to clients whose certificate the operator CA signed; no shell, no
// passwords).
//
//	api:
//	  ca: ca/ca.pem      # the operator CA certificate (bulkhead ca init), relative to the spec
//	  listen: ":7443"    # default
//
// The CA certificate is baked into the verified root; its key never is.
type API struct {
	// The operator CA certificate (PEM); only client certificates it signed are accepted.
	CA string `json:"ca" yaml:"ca"`
	// Address to listen on (default ":7443").
	Listen string `json:"listen,omitempty" yaml:"listen,omitempty"`

	Pos   Pos `json:"-" yaml:"-"`
	CAPos Pos `json:"-" yaml:"-"`
}

func decodeAPI(d *decoder, n *yaml.Node, s *Spec) {
	var v API
	set := d.structure(n, reflect.ValueOf(&v).Elem(), "api")
	if set == nil {
		return
	}
	v.Pos = d.pos(n)
	if vn := set["ca"]; vn == nil || strings.TrimSpace(v.CA) == "" {
		d.errorf(n, "api: missing required field \"ca\" (the operator CA certificate: bulkhead ca init)")
	} else {
		v.CAPos = d.pos(vn)
	}
	if vn := set["listen"]; vn != nil {
		_, port, err := net.SplitHostPort(v.Listen)
		if p, perr := strconv.Atoi(port); err != nil || perr != nil || p < 1 || p > 65535 {
			d.errorf(vn, "listen: expected [HOST]:PORT, got %q", v.Listen)
		}
	}
	s.API = &v
}
