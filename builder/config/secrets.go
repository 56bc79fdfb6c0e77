package config

import (
	"fmt"
	"path"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/bulkhead-dev/bulkhead/internal/secretspec"
	"gopkg.in/yaml.v3"
)

// Secret is an entry of bulkhead's top-level `secrets:` section: a secret
// the host fetches at boot, by name and source, never by value.
//
//	secrets:
//	  - name: db-password
//	    source: fw_cfg:opt/com.example/db-password  # or ec2:PATH, gcp:PATH, configdrive:PATH
//	    refresh: 1h      # fetch again this often (rotation); default never
//	    timeout: 5s      # one fetch attempt (default 5s)
type Secret struct {
	// The secret's name, as services name it.
	Name string `json:"name" yaml:"name"`
	// Where the host fetches it: fw_cfg:NAME, ec2:PATH, gcp:PATH or configdrive:PATH.
	Source string `json:"source" yaml:"source"`
	// Fetch again this often (a duration); a changed value is replaced and signalled.
	Refresh string `json:"refresh,omitempty" yaml:"refresh,omitempty"`
	// One attempt's timeout (default 5s).
	Timeout string `json:"timeout,omitempty" yaml:"timeout,omitempty"`

	Pos Pos `json:"-" yaml:"-"`
}

// SecretUse is an entry of a service's `secrets:` list: a secret's name,
// or a mapping that also sets where the service sees it.
//
//	secrets:
//	  - db-password                      # /run/secrets/db-password, 0400, the service's uid
//	  - name: tls-key
//	    path: /etc/web/tls/key.pem       # its directory becomes a read-only mount of secrets only
//	    uid: 101
//	    gid: 101
//	    mode: "0440"
//	    signal: SIGHUP                   # sent when a refresh changes the value
type SecretUse struct {
	// The secret's name (secrets[].name).
	Name string `json:"name" yaml:"name"`
	// Where the service reads it (default /run/secrets/NAME); its directory
	// becomes a read-only mount holding only secrets.
	Path string `json:"path,omitempty" yaml:"path,omitempty"`
	// Owner: a number, a user of the image or a container name (default the service's).
	UID *ID `json:"uid,omitempty" yaml:"uid,omitempty"`
	// Group (default the owner's).
	GID *ID `json:"gid,omitempty" yaml:"gid,omitempty"`
	// A read-only mode, octal (default 0400).
	Mode string `json:"mode,omitempty" yaml:"mode,omitempty"`
	// Sent to the service when a refresh changes the value.
	Signal string `json:"signal,omitempty" yaml:"signal,omitempty"`

	Pos Pos `json:"-" yaml:"-"`
}

var secretUseType = reflect.TypeFor[SecretUse]()

// secretUse decodes a SecretUse from a name or a mapping.
func (d *decoder) secretUse(n *yaml.Node, v reflect.Value, what string) bool {
	u := SecretUse{Pos: d.pos(n)}
	if n.Kind == yaml.ScalarNode {
		u.Name = n.Value
	} else if d.structure(n, reflect.ValueOf(&u).Elem(), what) == nil {
		return false
	}
	v.Set(reflect.ValueOf(u))
	return true
}

func decodeSecrets(d *decoder, n *yaml.Node, s *Spec) {
	for _, item := range d.items(n, "secrets") {
		v := Secret{Pos: d.pos(item)}
		m := d.structure(item, reflect.ValueOf(&v).Elem(), "secret")
		if m == nil {
			continue
		}
		d.checkSecret(&v, item, m)
		s.Secrets = append(s.Secrets, v)
	}
}

func (d *decoder) checkSecret(v *Secret, n *yaml.Node, m map[string]*yaml.Node) {
	if m["name"] == nil {
		d.errorf(n, "secret: missing required field \"name\"")
	} else if !secretspec.ValidName(v.Name) {
		d.errorf(m["name"], "secret name %s: use letters, digits, '.', '_' and '-' (at most 128, not starting with '.')", quote(v.Name))
	}
	if m["source"] == nil {
		d.errorf(n, "secret: missing required field \"source\" (fw_cfg:opt/NAME, ec2:PATH, gcp:PATH or configdrive:PATH)")
	} else if _, err := secretspec.ParseSource(v.Source); err != nil {
		d.errorf(m["source"], "%v", err)
	}
	for _, f := range []struct {
		key, val string
	}{{"refresh", v.Refresh}, {"timeout", v.Timeout}} {
		if vn := m[f.key]; vn != nil {
			if dur, err := time.ParseDuration(f.val); err != nil || dur <= 0 {
				d.errorf(vn, "%s: expected a positive duration (30s, 1h), got %s", f.key, quote(f.val))
			}
		}
	}
}

// checkSecretUses checks a container's secrets list: services only, each
// name once, each path once and allowed, a mode and a signal that exist.
func (d *decoder) checkSecretUses(section string, img *Image, n *yaml.Node) {
	if len(img.Secrets) == 0 {
		return
	}
	if section != "services" {
		d.errorf(n, "secrets: only services receive secrets, not %s", section)
		return
	}
	items := d.items(n, "secrets")
	names, paths := map[string]Pos{}, map[string]Pos{}
	for i, u := range img.Secrets {
		at := n
		if i < len(items) {
			at = items[i]
		}
		d.checkSecretUse(u, at, names, paths)
	}
}

func (d *decoder) checkSecretUse(u SecretUse, at *yaml.Node, names, paths map[string]Pos) {
	if !secretspec.ValidName(u.Name) {
		d.errorf(at, "secret name %s: use letters, digits, '.', '_' and '-'", quote(u.Name))
		return
	}
	if first, dup := names[u.Name]; dup {
		d.errorf(at, "secret %s already listed at %s", quote(u.Name), first)
		return
	}
	names[u.Name] = u.Pos
	p := SecretPath(u)
	if err := secretspec.CheckPath(p); err != nil {
		d.errorf(at, "secret %s: %v", quote(u.Name), err)
	} else if first, dup := paths[p]; dup {
		d.errorf(at, "secret %s: path %s already used at %s", quote(u.Name), p, first)
	}
	paths[p] = u.Pos
	if u.Mode != "" {
		if _, err := SecretMode(u); err != nil {
			d.errorf(at, "secret %s: %v", quote(u.Name), err)
		}
	}
	if _, ok := secretspec.Signal(u.Signal); u.Signal != "" && !ok {
		d.errorf(at, "secret %s: unknown signal %s (SIGHUP, SIGUSR1, SIGUSR2, SIGTERM, ...)", quote(u.Name), quote(u.Signal))
	}
}

// SecretPath is where the service sees the secret.
func SecretPath(u SecretUse) string {
	if u.Path != "" {
		return u.Path
	}
	return secretspec.DefaultDir + "/" + u.Name
}

// SecretMode is the secret file's mode: an octal string, default 0400.
func SecretMode(u SecretUse) (uint32, error) {
	if u.Mode == "" {
		return secretspec.DefaultMode, nil
	}
	m, err := strconv.ParseUint(u.Mode, 8, 32)
	if err != nil || m > 0o777 {
		return 0, fmt.Errorf("mode %s: expected octal permissions such as \"0400\"", quote(u.Mode))
	}
	if m&0o222 != 0 {
		return 0, fmt.Errorf("mode %s: a secret is read-only", quote(u.Mode))
	}
	return uint32(m), nil
}

// checkSecretNames checks, once every file is merged, that each secret is
// declared once and that services read only declared secrets.
func checkSecretNames(s *Spec, errs *errorList) {
	declared := map[string]Pos{}
	var names []string
	for _, v := range s.Secrets {
		if first, dup := declared[v.Name]; dup {
			errs.add(v.Pos, "duplicate secret %s (first defined at %s)", quote(v.Name), first)
			continue
		}
		declared[v.Name] = v.Pos
		names = append(names, v.Name)
	}
	for _, svc := range s.Services {
		for _, u := range svc.Secrets {
			if _, ok := declared[u.Name]; !ok && secretspec.ValidName(u.Name) {
				errs.add(u.Pos, "service %s reads undeclared secret %s%s (declare it in the top-level secrets section)",
					quote(svc.Name), quote(u.Name), didYouMean(u.Name, names))
			}
		}
	}
}

// warnSecretsBinds warns, when the host has secrets, of each container
// that binds the secrets tmpfs or a directory above it: a root container
// reads through it the copies root owns.
func warnSecretsBinds(s *Spec) {
	if len(s.Secrets) == 0 {
		return
	}
	for _, list := range [][]*Image{s.Onboot, s.Services, s.Onshutdown} {
		for _, img := range list {
			for _, b := range bindsOf(img) {
				if src := path.Clean(b.Source); strings.HasPrefix(secretspec.RunDir+"/", strings.TrimSuffix(src, "/")+"/") ||
					strings.HasPrefix(src, secretspec.RunDir+"/") {
					w := &Error{Pos: img.Pos, Msg: fmt.Sprintf("%s binds %s, which holds the secrets tmpfs (%s): as root it reads the secrets root owns",
						quote(img.Name), b.Source, secretspec.RunDir)}
					if !hasWarning(s.Warnings, w) { // Merge checks specs Parse checked
						s.Warnings = append(s.Warnings, w)
					}
				}
			}
		}
	}
	s.Warnings.sort()
}

func bindsOf(img *Image) []Bind {
	var out []Bind
	for _, list := range []*[]string{img.Binds, img.BindsAdd} {
		if list == nil {
			continue
		}
		for _, v := range *list {
			if b, err := ParseBind(v); err == nil && strings.HasPrefix(b.Source, "/") {
				out = append(out, b)
			}
		}
	}
	return out
}

func hasWarning(ws Errors, w *Error) bool {
	for _, x := range ws {
		if x.Pos == w.Pos && x.Msg == w.Msg {
			return true
		}
	}
	return false
}
