package scan

import (
	"path"
	"strings"

	"github.com/bulkhead-dev/bulkhead/builder/rootfs"
	"github.com/bulkhead-dev/bulkhead/builder/scan/minimal"
)

// hostPrograms are the host's own entrypoints, when present: the init,
// bulkhead's stage 0 (the /init of the initrd that verifies and mounts
// the root image: builder/build.Stage0Binary), containerd, its runc shim
// and runc.
var hostPrograms = []struct{ name, path string }{
	{"init", "/init"},
	{"init", "/sbin/init"},
	{"stage0", "/usr/lib/bulkhead/stage0"},
	{"containerd", "/usr/bin/containerd"},
	{"shim", "/usr/bin/containerd-shim-runc-v2"},
	{"runc", "/usr/bin/runc"},
}

const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// entrypoints lists what the host runs: its own programs and the command
// of each container bundle under containers/ (LinuxKit's layout).
func entrypoints(t *rootfs.Tree) []minimal.Entrypoint {
	var out []minimal.Entrypoint
	for _, p := range hostPrograms {
		if t.Get(strings.TrimPrefix(p.path, "/")) != nil {
			out = append(out, minimal.Entrypoint{Name: p.name, Path: p.path})
		}
	}
	for _, section := range []string{"onboot", "onshutdown", "services"} {
		for _, dir := range t.Children(path.Join("containers", section)) {
			if ep, ok := containerEntrypoint(t, dir.Path); ok {
				out = append(out, ep)
			}
		}
	}
	return out
}

// containerEntrypoint reads a bundle's config.json for the command and
// runtime.json for where its root lies in the tree.
func containerEntrypoint(t *rootfs.Tree, bundle string) (minimal.Entrypoint, bool) {
	var cfg struct {
		Process struct {
			Args []string `json:"args"`
			Env  []string `json:"env"`
		} `json:"process"`
	}
	if !t.ReadBundleJSON(path.Join(bundle, "config.json"), &cfg) || len(cfg.Process.Args) == 0 {
		return minimal.Entrypoint{}, false
	}
	root := bundleRoot(t, bundle)
	cmd := cfg.Process.Args[0]
	if !strings.HasPrefix(cmd, "/") {
		cmd = lookPath(t, root, cmd, cfg.Process.Env)
	}
	return minimal.Entrypoint{Name: path.Base(bundle), Root: root, Path: cmd}, true
}

// bundleRoot is the tree path the bundle's rootfs is mounted from: the
// bind or overlay lower directory in runtime.json, else rootfs/.
func bundleRoot(t *rootfs.Tree, bundle string) string {
	if root, _, ok := t.BundleRoot(bundle); ok && root != "" {
		return root
	}
	return path.Join(bundle, "rootfs")
}

func lookPath(t *rootfs.Tree, root, cmd string, env []string) string {
	pathVar := defaultPath
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			pathVar = v
		}
	}
	for _, d := range strings.Split(pathVar, ":") {
		p := path.Join("/", d, cmd)
		if t.Get(path.Join(root, strings.TrimPrefix(p, "/"))) != nil {
			return p
		}
	}
	return path.Join("/usr/bin", cmd)
}
