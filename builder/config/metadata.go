package config

import (
	"reflect"
	"time"

	"github.com/bulkhead-dev/bulkhead/internal/metaspec"
	"gopkg.in/yaml.v3"
)

// Metadata is bulkhead's `metadata:` section: the provider that gives the
// host its name and user data at boot, as LinuxKit's metadata package
// does.
//
//	metadata:
//	  provider: ec2     # fw_cfg, ec2, gcp or configdrive
//	  hostname: true    # set the host name from it (default true)
//	  userdata: true    # write its user data to /run/config/userdata (default false)
//	  timeout: 10s      # bound of the whole step (default 10s)
type Metadata struct {
	// fw_cfg, ec2, gcp or configdrive.
	Provider string `json:"provider" yaml:"provider"`
	// Take the host name from the provider (default true).
	Hostname *bool `json:"hostname,omitempty" yaml:"hostname,omitempty"`
	// Write the user data to /run/config/userdata (default false).
	UserData bool `json:"userdata,omitempty" yaml:"userdata,omitempty"`
	// The whole step, retries included (default 10s).
	Timeout string `json:"timeout,omitempty" yaml:"timeout,omitempty"`

	Pos Pos `json:"-" yaml:"-"`
}

func decodeMetadata(d *decoder, n *yaml.Node, s *Spec) {
	var v Metadata
	set := d.structure(n, reflect.ValueOf(&v).Elem(), "metadata")
	if set == nil {
		return
	}
	v.Pos = d.pos(n)
	if pn := set["provider"]; pn == nil {
		d.errorf(n, "metadata: missing required field \"provider\" (fw_cfg, ec2, gcp or configdrive)")
	} else if _, err := metaspec.KeysOf(v.Provider); err != nil {
		d.errorf(pn, "metadata: %v", err)
	}
	if tn := set["timeout"]; tn != nil {
		if dur, err := time.ParseDuration(v.Timeout); err != nil || dur <= 0 {
			d.errorf(tn, "timeout: expected a positive duration (10s), got %s", quote(v.Timeout))
		}
	}
	s.Metadata = &v
}

// MetadataConfig is the section as the host reads it.
func (m *Metadata) MetadataConfig() metaspec.Config {
	return metaspec.Config{Provider: m.Provider, Hostname: m.Hostname == nil || *m.Hostname, UserData: m.UserData, Timeout: m.Timeout}
}
