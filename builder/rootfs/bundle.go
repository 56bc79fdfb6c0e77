package rootfs

import (
	"encoding/json"
	"path"
	"strings"
)

// maxBundleJSON bounds a bundle's config.json or runtime.json read back
// from a tree.
const maxBundleJSON = 4 << 20

// ReadBundleJSON decodes the JSON file p of the tree (a bundle's
// config.json or runtime.json, at most 4 MiB) into v, and reports whether
// it could.
func (t *Tree) ReadBundleJSON(p string, v any) bool {
	e := t.Get(p)
	if e == nil || e.Kind != KindFile || e.Size > maxBundleJSON {
		return false
	}
	b, err := t.ReadFile(p)
	return err == nil && json.Unmarshal(b, v) == nil
}

// BundleRoot is where in the tree the root of the container bundle at dir
// lies, as its runtime.json mounts it (bundleFiles): the source of a bind
// mount, read-only (the image's root as it is), or the lower directory of
// an overlay (writable); "" for an overlay without one. Without a root
// mount it is rootfs/ in the bundle. ok is false when the bundle has no
// runtime.json the tree can read.
func (t *Tree) BundleRoot(dir string) (root string, readonly, ok bool) {
	var rt struct {
		Mounts []struct {
			Destination string   `json:"destination"`
			Source      string   `json:"source"`
			Type        string   `json:"type"`
			Options     []string `json:"options"`
		} `json:"mounts"`
	}
	if !t.ReadBundleJSON(path.Join(dir, "runtime.json"), &rt) {
		return "", false, false
	}
	dest := "/" + path.Join(dir, "rootfs")
	for _, m := range rt.Mounts {
		if m.Destination != dest {
			continue
		}
		if m.Type == "overlay" {
			for _, o := range m.Options {
				if lower, ok := strings.CutPrefix(o, "lowerdir="); ok {
					return strings.TrimPrefix(lower, "/"), false, true
				}
			}
			return "", false, true
		}
		return strings.TrimPrefix(m.Source, "/"), true, true
	}
	return path.Join(dir, "rootfs"), true, true
}
