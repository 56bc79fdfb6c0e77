package metadata

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/bulkhead-dev/bulkhead/internal/metaspec"
)

// New returns the provider of a source kind: fw_cfg, ec2, gcp or
// configdrive, with its defaults.
func New(kind string) (Provider, error) {
	switch kind {
	case "fw_cfg":
		return FwCfg{}, nil
	case "ec2":
		return &EC2{}, nil
	case "gcp":
		return &GCP{}, nil
	case "configdrive":
		return ConfigDrive{}, nil
	}
	return nil, fmt.Errorf("unknown metadata provider %q", kind)
}

// Hostname reads the host's name from p at the keys of its kind (the
// first set of keys that answers).
func Hostname(ctx context.Context, p Provider, keys []metaspec.Keys) (name, from string, err error) {
	err = ErrNotFound
	for _, k := range keys {
		var b []byte
		if b, err = p.Fetch(ctx, k.Hostname); err != nil {
			continue
		}
		if name, err = hostnameFrom(b, k); err == nil {
			return name, k.Hostname, nil
		}
	}
	return "", "", err
}

// UserData reads the host's user data from p.
func UserData(ctx context.Context, p Provider, keys []metaspec.Keys) (data []byte, from string, err error) {
	err = ErrNotFound
	for _, k := range keys {
		if data, err = p.Fetch(ctx, k.UserData); err == nil {
			return data, k.UserData, nil
		}
	}
	return nil, "", err
}

// hostnameFrom takes the name from what the key holds: the text itself,
// a field of a JSON document, or a key of a flat YAML document.
func hostnameFrom(b []byte, k metaspec.Keys) (string, error) {
	name := strings.TrimSpace(string(b))
	switch {
	case k.HostnameJSON != "":
		var doc map[string]any
		if err := json.Unmarshal(b, &doc); err != nil {
			return "", fmt.Errorf("%s: %w", k.Hostname, err)
		}
		name, _ = doc[k.HostnameJSON].(string)
	case k.HostnameYAML != "":
		name = yamlField(b, k.HostnameYAML)
	}
	if !ValidHostname(name) {
		return "", fmt.Errorf("%s: not a host name", k.Hostname)
	}
	return name, nil
}

// yamlField reads "key: value" from a flat YAML document.
func yamlField(b []byte, key string) string {
	for _, line := range bytes.Split(b, []byte{'\n'}) {
		k, v, ok := strings.Cut(string(line), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.Trim(strings.TrimSpace(v), `"'`)
		}
	}
	return ""
}

// ValidHostname says s is a host name (letters, digits, '-' and '.', at
// most 64 characters).
func ValidHostname(s string) bool {
	if s == "" || len(s) > 64 || s[0] == '-' || s[0] == '.' {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}
