package build

import (
	"fmt"
	"path"
	"strings"

	"github.com/bulkhead-dev/bulkhead/builder/config"
	"github.com/bulkhead-dev/bulkhead/builder/rootfs"
)

// CheckContainers checks what each container of the assembled tree needs
// of its image, which only the image contents tell: its command is there
// (absolute, or on its PATH), and, when its root is read-only, every mount
// target is there too. The host's root is read-only, so runc cannot make
// a missing target and the container fails at every start ("mkdirat
// …/rootfs/etc/nginx: read-only file system"). Each problem is reported at
// the container's entry in the spec; nil when there is none.
func CheckContainers(spec *config.Spec, t *rootfs.Tree) error {
	var errs config.Errors
	for _, s := range []struct {
		name     string
		images   []*config.Image
		numbered bool
	}{
		{"onboot", spec.Onboot, true},
		{"onshutdown", spec.Onshutdown, true},
		{"services", spec.Services, false},
	} {
		for i, c := range s.images {
			dir := c.Name
			if s.numbered {
				dir = fmt.Sprintf("%03d-%s", i, c.Name)
			}
			for _, msg := range checkBundle(t, path.Join("containers", s.name, dir), c.Image) {
				errs = append(errs, &config.Error{Pos: c.Pos, Msg: fmt.Sprintf("%s %q: %s", s.name, c.Name, msg)})
			}
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return errs
}

type bundleConfig struct {
	Process *struct {
		Args []string `json:"args"`
		Env  []string `json:"env"`
	} `json:"process"`
	Mounts []struct {
		Destination string `json:"destination"`
	} `json:"mounts"`
}

// checkBundle lists what is wrong with the bundle at dir of a container
// running image.
func checkBundle(t *rootfs.Tree, dir, image string) []string {
	var cfg bundleConfig
	root, readonly, ok := t.BundleRoot(dir)
	if !ok || !t.ReadBundleJSON(path.Join(dir, "config.json"), &cfg) {
		return nil // not a bundle the assembler wrote: nothing to check
	}
	var out []string
	if p := cfg.Process; p != nil && len(p.Args) > 0 {
		if !hasCommand(t, root, p.Args[0], p.Env) {
			out = append(out, fmt.Sprintf("command %q is not in image %s", p.Args[0], image))
		}
	}
	if !readonly {
		return out
	}
	var mounted []string
	for _, m := range cfg.Mounts {
		dest := path.Clean("/" + m.Destination)
		if !under(dest, mounted) && lookup(t, root, dest) == nil {
			out = append(out, fmt.Sprintf("mount target %s is not in image %s and the root is read-only (readonly: true), so runc cannot make it at boot: add it to the image or drop readonly", dest, image))
		}
		mounted = append(mounted, dest)
	}
	return out
}

// under says p is at or below one of dirs: a mount made earlier provides it.
func under(p string, dirs []string) bool {
	for _, d := range dirs {
		if p == d || d == "/" || strings.HasPrefix(p, d+"/") {
			return true
		}
	}
	return false
}

const defaultPATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// hasCommand says cmd is in the root at dir: as written when it holds a
// slash, else in a directory of env's PATH. An unknown root ("") is not
// checked.
func hasCommand(t *rootfs.Tree, root, cmd string, env []string) bool {
	if root == "" {
		return true
	}
	if strings.Contains(cmd, "/") {
		return lookup(t, root, path.Clean("/"+cmd)) != nil
	}
	pathVar := defaultPATH
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			pathVar = v
		}
	}
	for _, d := range strings.Split(pathVar, ":") {
		if d != "" && lookup(t, root, path.Join("/", d, cmd)) != nil {
			return true
		}
	}
	return false
}

// lookup finds the absolute path p inside the root at root, following
// symbolic links as the kernel does inside a chroot (at most 40).
func lookup(t *rootfs.Tree, root, p string) *rootfs.Entry {
	if root == "" {
		return nil
	}
	hops := 0
	rest := strings.Split(strings.TrimPrefix(p, "/"), "/")
	cur := "" // resolved so far, relative to root
	for len(rest) > 0 {
		name := rest[0]
		rest = rest[1:]
		switch name {
		case "", ".":
			continue
		case "..":
			cur = path.Dir(cur)
			if cur == "." {
				cur = ""
			}
			continue
		}
		next := path.Join(cur, name)
		e := t.Get(path.Join(root, next))
		if e == nil {
			return nil
		}
		if e.Kind != rootfs.KindSymlink {
			cur = next
			continue
		}
		if hops++; hops > 40 {
			return nil
		}
		target := e.Link
		if strings.HasPrefix(target, "/") {
			cur = ""
		}
		rest = append(strings.Split(target, "/"), rest...)
	}
	if cur == "" {
		return t.Get(root)
	}
	return t.Get(path.Join(root, cur))
}
