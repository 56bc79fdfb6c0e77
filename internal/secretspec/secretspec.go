// Package secretspec is the contract between the builder and the host for
// run-time secrets (a bulkhead extension of the spec): how a secret's
// source is written, the files the build writes (the host's list of
// secrets and their sources, and each service's list of the secrets it
// reads), and where the init keeps the values (a tmpfs under /run). Only
// names and sources ever pass through here, never a value. It imports only
// the standard library, so the on-host init links nothing of the builder.
package secretspec

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// Where the build writes the lists, and where the init keeps the values.
const (
	// ListPath is the host's list of secrets (names, sources, refresh) in
	// the root.
	ListPath = "/usr/share/bulkhead/secrets.json"
	// FileName is a service's list of the secrets it reads, in its bundle
	// directory beside config.json.
	FileName = "secrets.json"
	// RunDir is the tmpfs (mode 0700, root's) the init keeps values on:
	// RunDir/<service>/<n>/ holds the files one mount shows the service.
	RunDir = "/run/bulkhead/secrets"
	// DefaultDir is where a service sees a secret with no path set.
	DefaultDir = "/run/secrets"
	// DefaultMode is a secret file's mode unless the service sets one.
	DefaultMode = 0o400
)

// Defaults of a Secret's fetch timing.
const (
	DefaultTimeout = 5 * time.Second
	// MaxSize bounds a secret's value.
	MaxSize = 1 << 20
)

// maxFile bounds the lists Read accepts.
const maxFile = 1 << 20

// Secret is one secret the host fetches: its name and where from. Refresh,
// when set, is how often the init fetches it again (rotation).
type Secret struct {
	Name    string `json:"name"`
	Source  string `json:"source"`
	Refresh string `json:"refresh,omitempty"`
	Timeout string `json:"timeout,omitempty"`
}

// Use is one secret a service reads: the file it sees, its owner and mode,
// and the signal that tells the service the value changed.
type Use struct {
	Name   string `json:"name"`
	Path   string `json:"path"`
	UID    uint32 `json:"uid"`
	GID    uint32 `json:"gid"`
	Mode   uint32 `json:"mode"`
	Signal string `json:"signal,omitempty"`
}

// Provider names a kind of source.
type Provider string

// The providers a source may name.
const (
	// FwCfg is a qemu fw_cfg entry: fw_cfg:opt/NAME.
	FwCfg Provider = "fw_cfg"
	// EC2 is the EC2 instance metadata service (IMDSv2): ec2:PATH, a path
	// under /latest/ (user-data, meta-data/tags/instance/KEY).
	EC2 Provider = "ec2"
	// GCP is Google's metadata server: gcp:PATH, a path under
	// /computeMetadata/v1/ (instance/attributes/KEY).
	GCP Provider = "gcp"
	// ConfigDrive is a file on an OpenStack (config-2) or NoCloud (cidata)
	// config drive: configdrive:PATH, relative to the drive's root.
	ConfigDrive Provider = "configdrive"
)

// Providers lists every provider, in the order documentation shows them.
func Providers() []Provider { return []Provider{FwCfg, EC2, GCP, ConfigDrive} }

// Source is a parsed source: a provider and the key it looks up.
type Source struct {
	Provider Provider
	Key      string
}

func (s Source) String() string { return string(s.Provider) + ":" + s.Key }

// ParseSource reads PROVIDER:KEY.
func ParseSource(s string) (Source, error) {
	p, key, ok := strings.Cut(s, ":")
	if !ok {
		return Source{}, fmt.Errorf("source %q: expected PROVIDER:KEY (providers: %s)", s, providerList())
	}
	src := Source{Provider: Provider(p), Key: key}
	switch src.Provider {
	case FwCfg:
		if !strings.HasPrefix(key, "opt/") || !cleanRel(key) {
			return Source{}, fmt.Errorf("source %q: a fw_cfg name is opt/NAME (qemu reserves the others)", s)
		}
	case EC2, GCP, ConfigDrive:
		if !cleanRel(key) {
			return Source{}, fmt.Errorf("source %q: expected a relative path without . or .. parts", s)
		}
	default:
		return Source{}, fmt.Errorf("source %q: unknown provider %q (providers: %s)", s, p, providerList())
	}
	return src, nil
}

func providerList() string {
	var s []string
	for _, p := range Providers() {
		s = append(s, string(p))
	}
	return strings.Join(s, ", ")
}

// cleanRel says p is a clean relative path of printable characters.
func cleanRel(p string) bool {
	if p == "" || strings.HasPrefix(p, "/") || path.Clean(p) != p || p == "." || strings.HasPrefix(p, "../") || p == ".." {
		return false
	}
	for _, c := range p {
		if c <= ' ' || c == 0x7f || c == '?' || c == '#' {
			return false
		}
	}
	return true
}

// ValidName says n may name a secret: letters, digits, '.', '_' and '-',
// at most 128 characters, not starting with '.'.
func ValidName(n string) bool {
	if n == "" || len(n) > 128 || n[0] == '.' {
		return false
	}
	for _, c := range n {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("._-", c)) {
			return false
		}
	}
	return true
}

// reservedDirs may not hold a secret: a secret's directory is mounted over
// in the container, and these must stay the image's.
var reservedDirs = []string{"/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib64", "/proc",
	"/root", "/run", "/sbin", "/sys", "/tmp", "/usr", "/usr/bin", "/usr/lib", "/usr/local", "/usr/sbin", "/var"}

// CheckPath says what is wrong with a secret's path inside a container.
// The path's directory becomes a read-only mount holding only secrets.
func CheckPath(p string) error {
	if !strings.HasPrefix(p, "/") || path.Clean(p) != p {
		return fmt.Errorf("path %q: expected a clean absolute path", p)
	}
	for _, r := range reservedDirs {
		if path.Dir(p) == r {
			return fmt.Errorf("path %q: its directory %s is mounted over with the secrets; use a directory of its own (default %s)", p, r, DefaultDir)
		}
	}
	return nil
}

// Dirs groups a service's uses by the directory they appear in, in the
// order of first appearance: each directory is one mount.
func Dirs(uses []Use) []string {
	var dirs []string
	for _, u := range uses {
		d := path.Dir(u.Path)
		if !contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	return dirs
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// HostDir is the directory on the host's tmpfs that is mounted at the
// service's i-th directory (see Dirs).
func HostDir(service string, i int) string {
	return path.Join(RunDir, service, fmt.Sprint(i))
}

// ReadList reads the host's list of secrets from the root at root; no list
// is no secrets.
func ReadList(root string) ([]Secret, error) {
	var list []Secret
	if err := readJSON(filepath.Join(root, ListPath), &list); err != nil {
		return nil, fmt.Errorf("reading secrets list: %w", err)
	}
	return list, nil
}

// ReadUses reads a service's uses from its bundle directory; none is an
// empty list.
func ReadUses(bundleDir string) ([]Use, error) {
	var uses []Use
	if err := readJSON(filepath.Join(bundleDir, FileName), &uses); err != nil {
		return nil, fmt.Errorf("reading service secrets: %w", err)
	}
	return uses, nil
}

func readJSON(p string, v any) error {
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	dec := json.NewDecoder(&limited{f: f, n: maxFile})
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// limited is an io.Reader that fails past n bytes instead of truncating.
type limited struct {
	f io.Reader
	n int
}

func (l *limited) Read(b []byte) (int, error) {
	if l.n <= 0 {
		return 0, errors.New("file too large")
	}
	if len(b) > l.n {
		b = b[:l.n]
	}
	n, err := l.f.Read(b)
	l.n -= n
	return n, err
}

// Marshal encodes a list (of Secret or Use) as the build writes it.
func Marshal(v any) ([]byte, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding secrets list: %w", err)
	}
	return append(b, '\n'), nil
}

// Signal returns the number of a signal a service may name for a changed
// secret (Linux x86-64 and arm64 agree on these).
func Signal(name string) (int, bool) {
	switch name {
	case "SIGHUP":
		return 1, true
	case "SIGINT":
		return 2, true
	case "SIGQUIT":
		return 3, true
	case "SIGUSR1":
		return 10, true
	case "SIGUSR2":
		return 12, true
	case "SIGTERM":
		return 15, true
	case "SIGWINCH":
		return 28, true
	}
	return 0, false
}

// Timing returns a secret's fetch timeout and refresh period (0: never).
func (s Secret) Timing() (timeout, refresh time.Duration) {
	timeout = DefaultTimeout
	if d, err := time.ParseDuration(s.Timeout); err == nil && d > 0 {
		timeout = d
	}
	if d, err := time.ParseDuration(s.Refresh); err == nil && d > 0 {
		refresh = d
	}
	return timeout, refresh
}
