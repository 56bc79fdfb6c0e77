package config

import (
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"gopkg.in/yaml.v3"
)

var (
	containerNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)
	volumeNameRE    = regexp.MustCompile(`^[a-z0-9_-]+$`)
)

// checkRef reports an image reference that cannot be parsed.
func (d *decoder) checkRef(n *yaml.Node, ref, what string) {
	if ref == "" {
		d.errorf(n, "empty %s reference", what)
		return
	}
	if strings.HasPrefix(ref, LayoutPrefix) {
		if _, err := ParseLayoutRef(ref); err != nil {
			d.errorf(n, "invalid %s reference %s: %v", what, quote(ref), err)
		}
		return
	}
	if _, err := name.ParseReference(ref); err != nil {
		d.errorf(n, "invalid %s reference %s", what, quote(ref))
	}
}

// checkImage checks one onboot, onshutdown or services entry; n is its
// mapping and m the value node of each key set.
func (d *decoder) checkImage(img *Image, n *yaml.Node, m map[string]*yaml.Node) {
	switch {
	case img.Name == "":
		d.errorf(n, "missing required field \"name\"")
	case !containerNameRE.MatchString(img.Name):
		d.errorf(m["name"], "invalid container name %s: use letters, digits, '.', '_' and '-'", quote(img.Name))
	}
	if img.Image == "" {
		d.errorf(n, "missing required field \"image\"")
	} else {
		d.checkRef(m["image"], img.Image, "image")
	}
	d.checkImageConfig(&img.ImageConfig, m)
}

// checkHealth checks a container's health check: services only, and a
// valid check, each problem at its field.
func (d *decoder) checkHealth(section string, img *Image, n *yaml.Node) {
	if img.Healthcheck == nil {
		return
	}
	if section != "services" {
		d.errorf(n, "healthcheck: only services have health checks, not %s", section)
		return
	}
	fields := map[string]*yaml.Node{}
	if m := resolve(n); m != nil && m.Kind == yaml.MappingNode {
		for _, p := range d.pairs(m, 0) {
			fields[resolve(p.key).Value] = p.value
		}
	}
	for _, p := range img.Healthcheck.Problems() {
		at := n
		if f := fields[p.Field]; f != nil {
			at = f
		}
		d.errorf(at, "healthcheck: %v", p)
	}
}

// checkImageConfig checks the runtime settings shared by spec entries and
// image labels.
func (d *decoder) checkImageConfig(c *ImageConfig, m map[string]*yaml.Node) {
	for _, key := range []string{"capabilities", "capabilities.add", "ambient"} {
		d.checkCapabilities(m[key])
	}
	for _, key := range []string{"binds", "binds.add"} {
		d.eachString(m[key], d.checkBind)
	}
	d.eachString(m["tmpfs"], d.checkTmpfs)
	d.eachString(m["rlimits"], func(n *yaml.Node) {
		if _, err := ParseRlimit(n.Value); err != nil {
			d.errorf(n, "%v", err)
		}
	})
	d.checkNamespace(m["net"], "net", c.Net, "host", "new", "none")
	d.checkNamespace(m["pid"], "pid", c.Pid, "host", "new")
	d.checkNamespace(m["ipc"], "ipc", c.Ipc, "host", "new")
	d.checkNamespace(m["uts"], "uts", c.Uts, "host", "new")
	d.checkNamespace(m["userns"], "userns", c.Userns, "host", "new")
	d.checkNamespace(m["cgroupns"], "cgroupns", c.Cgroupns, "host", "new")
	if c.Cwd != "" && !strings.HasPrefix(c.Cwd, "/") {
		d.errorf(m["cwd"], "cwd %s is not an absolute path", quote(c.Cwd))
	}
	if c.OOMScoreAdj != nil && (*c.OOMScoreAdj < -1000 || *c.OOMScoreAdj > 1000) {
		d.errorf(m["oomScoreAdj"], "oomScoreAdj %d out of range -1000..1000", *c.OOMScoreAdj)
	}
	if p := c.RootfsPropagation; p != nil && *p != "" {
		ok := []string{"shared", "slave", "private", "unbindable", "rshared", "rslave", "rprivate", "runbindable"}
		if indexOf(ok, *p) < 0 {
			d.errorf(m["rootfsPropagation"], "unknown rootfsPropagation %s%s", quote(*p), didYouMean(*p, ok))
		}
	}
	if c.Mounts != nil {
		d.checkMounts(m["mounts"], c)
	}
	if c.Devices != nil {
		d.checkDevices(m["devices"], *c.Devices)
	}
}

// eachString calls fn on each string item of a list node that decoded.
func (d *decoder) eachString(n *yaml.Node, fn func(*yaml.Node)) {
	n = resolve(n)
	if n == nil || n.Kind != yaml.SequenceNode {
		return
	}
	for _, item := range n.Content {
		if item = resolve(item); item != nil && item.Kind == yaml.ScalarNode && !isNull(item) {
			fn(item)
		}
	}
}

func (d *decoder) checkCapabilities(n *yaml.Node) {
	var items []*yaml.Node
	d.eachString(n, func(item *yaml.Node) { items = append(items, item) })
	for _, item := range items {
		c := item.Value
		special := strings.EqualFold(c, "all") || strings.EqualFold(c, "none")
		switch {
		case special && len(items) > 1:
			d.errorf(item, "%s must be the only capability in its list", quote(c))
		case special:
		case !isCapability(c):
			d.errorf(item, "unknown capability %s%s", quote(c), capabilityHint(c))
		}
	}
}

// capabilityHint suggests the CAP_ name meant: the name with the prefix
// added or its case fixed, or the closest name.
func capabilityHint(c string) string {
	up := strings.ToUpper(c)
	if !strings.HasPrefix(up, "CAP_") {
		up = "CAP_" + up
	}
	if isCapability(up) {
		return " (did you mean " + quote(up) + "?)"
	}
	return didYouMean(c, capabilityNames[:])
}

func (d *decoder) checkBind(n *yaml.Node) {
	b, err := ParseBind(n.Value)
	if err != nil {
		d.errorf(n, "%v", err)
		return
	}
	if b.Volume() {
		d.uses = append(d.uses, volumeUse{volume: b.Source, bind: n.Value, pos: d.pos(n)})
	}
}

func (d *decoder) checkTmpfs(n *yaml.Node) {
	dst, _, _ := strings.Cut(n.Value, ":")
	if strings.Count(n.Value, ":") > 1 {
		d.errorf(n, "tmpfs %s: expected dst[:options]", quote(n.Value))
		return
	}
	if !strings.HasPrefix(dst, "/") {
		d.errorf(n, "tmpfs %s: destination %s is not an absolute path", quote(n.Value), quote(dst))
	}
}

// checkNamespace checks a namespace setting: one of the allowed words or an
// absolute path to a namespace file. "root" is LinuxKit's synonym for host.
func (d *decoder) checkNamespace(n *yaml.Node, key, v string, allowed ...string) {
	if v == "" || v == "root" || strings.HasPrefix(v, "/") || indexOf(allowed, v) >= 0 {
		return
	}
	d.errorf(n, "invalid %s %s: expected %s or an absolute path", key, quote(v), strings.Join(allowed, ", "))
}

// DefaultMountpoint is where a mount of a given type goes when its
// destination is left out (LinuxKit's defaults), or "" when it has none.
func DefaultMountpoint(typ string) string {
	switch typ {
	case "proc":
		return "/proc"
	case "devpts":
		return "/dev/pts"
	case "sysfs":
		return "/sys"
	case "cgroup", "cgroup2":
		return "/sys/fs/cgroup"
	case "mqueue":
		return "/dev/mqueue"
	}
	return ""
}

// checkMounts applies LinuxKit's rules for filling a mount's type and
// destination, and reports the mounts where neither can be worked out.
func (d *decoder) checkMounts(n *yaml.Node, c *ImageConfig) {
	items := d.items(n, "")
	for i, mt := range *c.Mounts {
		at := n
		if i < len(items) {
			at = items[i]
		}
		typ := mt.Type
		if typ == "" {
			switch mt.Source {
			case "mqueue", "devpts", "proc", "sysfs", "cgroup":
				typ = mt.Source
			}
		}
		if typ == "" && mt.Destination == "/dev" {
			typ = "tmpfs"
		}
		if typ == "" {
			d.errorf(at, "mount for %s is missing a type", quote(mt.Destination))
			continue
		}
		dst := mt.Destination
		if dst == "" {
			dst = DefaultMountpoint(typ)
		}
		switch {
		case dst == "":
			d.errorf(at, "mount of type %s is missing a destination", quote(typ))
		case !strings.HasPrefix(dst, "/"):
			d.warnf(at, "mount destination %s is not absolute: resolved inside the container as %s, as runc does",
				quote(dst), quote(MountDestination(dst)))
		}
	}
}

// MountDestination resolves a mount destination as runc does: a relative
// one is inside the container's root, as if it began with "/".
func MountDestination(dst string) string {
	if dst == "" {
		return ""
	}
	return path.Clean("/" + dst)
}

func (d *decoder) checkDevices(n *yaml.Node, devs []Device) {
	items := d.items(n, "")
	for i, dev := range devs {
		at := n
		if i < len(items) {
			at = items[i]
		}
		if dev.Path == "all" {
			// LinuxKit's "every device of this type": a cgroup rule, no node.
			if dev.Type != "b" && dev.Type != "c" {
				d.errorf(at, "device \"all\": type must be b or c, got %s", quote(dev.Type))
			}
			continue
		}
		if !strings.HasPrefix(dev.Path, "/") {
			d.errorf(at, "device path %s is not an absolute path", quote(dev.Path))
		}
		if indexOf([]string{"c", "b", "u", "p"}, dev.Type) < 0 {
			d.errorf(at, "device %s: type must be one of c, b, u or p, got %s", quote(dev.Path), quote(dev.Type))
		}
		if dev.Mode != "" {
			if err := checkMode(dev.Mode); err != nil {
				d.errorf(at, "device %s: %v", quote(dev.Path), err)
			}
		}
	}
}

// ParseMode reads a file mode written as an octal string, such as "0644".
func ParseMode(s string) (uint32, error) {
	v, err := strconv.ParseUint(s, 8, 32)
	if err != nil || v > 0o7777 {
		return 0, fmt.Errorf("invalid mode %s: expected an octal number such as \"0644\"", quote(s))
	}
	return uint32(v), nil
}

func checkMode(s string) error {
	_, err := ParseMode(s)
	return err
}

// CleanPath is a files entry's path as it lands in the root: relative,
// cleaned, without a leading "/".
func CleanPath(p string) string {
	return strings.TrimPrefix(path.Clean("/"+p), "/")
}

// escapes reports a path with a ".." element: the builder refuses it rather
// than guess what it meant.
func escapes(p string) bool {
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			return true
		}
	}
	return false
}

// checkFile checks one files entry.
func (d *decoder) checkFile(f *File, n *yaml.Node, m map[string]*yaml.Node) {
	switch {
	case f.Path == "":
		d.errorf(n, "missing required field \"path\"")
	case escapes(f.Path):
		d.errorf(m["path"], "path %s escapes the root: \"..\" is not allowed", quote(f.Path))
	case CleanPath(f.Path) == "":
		d.errorf(m["path"], "path %s names the root directory", quote(f.Path))
	}
	// Among the sources of content, at most one may be given.
	var set []string
	for _, key := range []string{"directory", "symlink", "contents", "source", "metadata"} {
		if m[key] != nil && !isNull(resolve(m[key])) && !(key == "directory" && !f.Directory) {
			set = append(set, key)
		}
	}
	if len(set) > 1 {
		d.errorf(m[set[1]], "%s cannot be used with %s", quote(set[1]), quote(set[0]))
	}
	if f.Metadata != "" && f.Metadata != "yaml" && f.Metadata != "json" {
		d.errorf(m["metadata"], "metadata must be \"yaml\" or \"json\", got %s", quote(f.Metadata))
	}
	if f.Mode != "" {
		if err := checkMode(f.Mode); err != nil {
			d.errorf(m["mode"], "%v", err)
		}
	}
}

// checkVolume checks one volumes entry.
func (d *decoder) checkVolume(v *Volume, n *yaml.Node, m map[string]*yaml.Node) {
	switch {
	case v.Name == "":
		d.errorf(n, "missing required field \"name\"")
	case !volumeNameRE.MatchString(v.Name):
		d.errorf(m["name"], "invalid volume name %s: use lowercase letters, digits, '_' and '-'", quote(v.Name))
	}
	if v.Image != "" {
		d.checkRef(m["image"], v.Image, "volume image")
	}
}

// checkNames reports container names used twice. Like LinuxKit, a name may
// repeat within onboot or within onshutdown (those containers are stored as
// NNN-name), but a services name must be unique, and no name may appear in
// two of the three lists.
func checkNames(s *Spec, errs *errorList) {
	type first struct {
		pos  Pos
		list int
	}
	seen := map[string]first{}
	for li, list := range [][]*Image{s.Onboot, s.Onshutdown, s.Services} {
		for _, img := range list {
			if img.Name == "" {
				continue
			}
			f, dup := seen[img.Name]
			if !dup {
				seen[img.Name] = first{img.Pos, li}
				continue
			}
			if f.list == li && li != 2 {
				continue
			}
			errs.add(img.Pos, "duplicate container name %s (first defined at %s)", quote(img.Name), f.pos)
		}
	}
}

// check runs the checks that need the whole (merged) spec.
func check(s *Spec, errs *errorList) {
	checkNames(s, errs)
	checkSecretNames(s, errs)
	warnSecretsBinds(s)
	paths := map[string]Pos{}
	for _, f := range s.Files {
		p := CleanPath(f.Path)
		if p == "" {
			continue
		}
		if first, dup := paths[p]; dup {
			errs.add(f.Pos, "duplicate file path %s (first defined at %s)", quote(p), first)
			continue
		}
		paths[p] = f.Pos
	}
	vols := map[string]Pos{}
	var names []string
	for _, v := range s.Volumes {
		if v.Name == "" {
			continue
		}
		if first, dup := vols[v.Name]; dup {
			errs.add(v.Pos, "duplicate volume name %s (first defined at %s)", quote(v.Name), first)
			continue
		}
		vols[v.Name] = v.Pos
		names = append(names, v.Name)
	}
	for _, u := range s.volumeUses {
		if _, ok := vols[u.volume]; !ok {
			errs.add(u.pos, "bind %s names unknown volume %s%s", quote(u.bind), quote(u.volume), didYouMean(u.volume, names))
		}
	}
}
