// Package metaspec is the contract between the builder and the host for
// the spec's metadata section (a bulkhead extension): which provider gives
// the host its name and user data at boot, as LinuxKit's metadata package
// does, and the file the build writes for the init. It imports only the
// standard library, so the on-host init links nothing of the builder.
package metaspec

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// Path is the metadata settings in the root.
const Path = "/usr/share/bulkhead/metadata.json"

// UserDataPath is where the init writes the user data (LinuxKit's place),
// on the /run tmpfs, mode 0600, root's.
const UserDataPath = "/run/config/userdata"

// DefaultTimeout bounds the whole metadata step of a boot.
const DefaultTimeout = 10 * time.Second

// Config is the metadata section as the host reads it.
type Config struct {
	// Provider is fw_cfg, ec2, gcp or configdrive.
	Provider string `json:"provider"`
	// Hostname sets the host name from the provider.
	Hostname bool `json:"hostname,omitempty"`
	// UserData writes the provider's user data to UserDataPath.
	UserData bool `json:"userdata,omitempty"`
	// Timeout bounds the step (a Go duration); default DefaultTimeout.
	Timeout string `json:"timeout,omitempty"`
}

// Keys are where a provider keeps a host's name and user data.
type Keys struct {
	Hostname string
	// HostnameJSON, when set, names the field of the JSON document at
	// Hostname that holds the name; HostnameYAML likewise for a simple
	// "key: value" YAML document (NoCloud's meta-data).
	HostnameJSON string
	HostnameYAML string
	UserData     string
}

// KeysOf returns a provider's keys: EC2's meta-data/local-hostname and
// user-data; GCP's instance/hostname and instance/attributes/user-data;
// on a config drive, OpenStack's openstack/latest/meta_data.json
// ("hostname") and openstack/latest/user_data, or NoCloud's meta-data
// ("local-hostname") and user-data; fw_cfg's opt/bulkhead/hostname and
// opt/bulkhead/userdata.
func KeysOf(provider string) ([]Keys, error) {
	switch provider {
	case "ec2":
		return []Keys{{Hostname: "meta-data/local-hostname", UserData: "user-data"}}, nil
	case "gcp":
		return []Keys{{Hostname: "instance/hostname", UserData: "instance/attributes/user-data"}}, nil
	case "configdrive":
		return []Keys{
			{Hostname: "openstack/latest/meta_data.json", HostnameJSON: "hostname", UserData: "openstack/latest/user_data"},
			{Hostname: "meta-data", HostnameYAML: "local-hostname", UserData: "user-data"},
		}, nil
	case "fw_cfg":
		return []Keys{{Hostname: "opt/bulkhead/hostname", UserData: "opt/bulkhead/userdata"}}, nil
	}
	return nil, fmt.Errorf("unknown metadata provider %q (fw_cfg, ec2, gcp, configdrive)", provider)
}

// TimeoutOf returns the step's bound.
func (c Config) TimeoutOf() time.Duration {
	if d, err := time.ParseDuration(c.Timeout); err == nil && d > 0 {
		return d
	}
	return DefaultTimeout
}

// Read reads the settings from the root at root; nil when there are none.
func Read(root string) (*Config, error) {
	f, err := os.Open(filepath.Join(root, Path))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading metadata settings: %w", err)
	}
	defer f.Close()
	var c Config
	dec := json.NewDecoder(io.LimitReader(f, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("reading metadata settings: %w", err)
	}
	return &c, nil
}

// Marshal encodes the settings as the build writes them.
func Marshal(c Config) ([]byte, error) {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding metadata settings: %w", err)
	}
	return append(b, '\n'), nil
}
