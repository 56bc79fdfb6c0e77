package rootfs

import (
	"fmt"
	"github.com/bulkhead-dev/bulkhead/internal/healthcheck"
	"path"
	"strings"

	"github.com/bulkhead-dev/bulkhead/builder/config"
	"github.com/bulkhead-dev/bulkhead/builder/ocispec"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Where containers and volumes live in the root (LinuxKit's layout).
const (
	containersDir = "containers"
	volumesDir    = "containers/volumes"
)

// containers unpacks the onboot, onshutdown and service containers:
// containers/onboot/NNN-name, containers/onshutdown/NNN-name and
// containers/services/name.
func (a *assembler) containers() error {
	for _, s := range []struct {
		name     string
		images   []*config.Image
		numbered bool
	}{
		{"onboot", a.spec.Onboot, true},
		{"onshutdown", a.spec.Onshutdown, true},
		{"services", a.spec.Services, false},
	} {
		for i, c := range s.images {
			dir := c.Name
			if s.numbered {
				dir = fmt.Sprintf("%03d-%s", i, c.Name)
			}
			if err := a.bundle(path.Join(containersDir, s.name), dir, c); err != nil {
				return fmt.Errorf("%s %q: %w", s.name, c.Name, err)
			}
		}
	}
	return nil
}

// bundle writes one container's bundle at section/dir: config.json,
// runtime.json and its root, in rootfs/ when read-only, else in lower/ with
// empty rootfs/ and tmp/ for the overlay. An image already unpacked for an
// earlier container is not unpacked again: runtime.json mounts that root.
func (a *assembler) bundle(section, dir string, c *config.Image) error {
	if !validName(c.Name) {
		return config.Errorf(c.Pos, "invalid container name %q", c.Name)
	}
	ft, img, err := a.flatten(c.Image, c.ImagePos, fixContainer)
	if err != nil {
		return err
	}
	res, err := ocispec.Generate(ocispec.Input{
		Image:       c,
		Config:      img.Config,
		IDs:         a.ids,
		LookupUser:  userLookup(ft),
		LookupGroup: groupLookup(ft),
	})
	if err != nil {
		return config.Errorf(c.Pos, "%w", err)
	}
	prefix := path.Join(section, dir)
	a.mkdir(prefix)
	root, shared := a.unpacked[c.Image]
	if !shared {
		root = path.Join(prefix, "lower")
		if res.Readonly {
			root = path.Join(prefix, "rootfs")
		}
		a.mkdir(root)
		graft(a.t, root, ft)
		a.unpacked[c.Image] = root
	}
	a.mkdir(path.Join(prefix, "rootfs"))
	if !res.Readonly {
		a.mkdir(path.Join(prefix, "tmp"))
	}
	if err := a.serviceSecrets(prefix, root, c, res, ft); err != nil {
		return err
	}
	if err := a.bundleFiles(prefix, root, res); err != nil {
		return config.Errorf(c.Pos, "%w", err)
	}
	if c.Healthcheck != nil {
		b, err := healthcheck.Marshal(*c.Healthcheck)
		if err != nil {
			return config.Errorf(c.Pos, "%w", err)
		}
		a.putData(path.Join(prefix, healthcheck.FileName), b, 0o644, OriginBulkhead)
	}
	return nil
}

// bundleFiles writes config.json and runtime.json, the rootfs mounts first
// in runtime.json's mounts (LinuxKit).
func (a *assembler) bundleFiles(prefix, root string, res *ocispec.Result) error {
	cfg, err := ocispec.Marshal(res.Spec)
	if err != nil {
		return err
	}
	rt := res.Runtime
	mounts := ocispec.RootfsMounts(prefix, root, res.Readonly)
	if rt.Mounts != nil {
		mounts = append(mounts, *rt.Mounts...)
	}
	if mounts == nil {
		mounts = []specs.Mount{}
	}
	rt.Mounts = &mounts
	rtJSON, err := ocispec.MarshalRuntime(rt)
	if err != nil {
		return err
	}
	a.putData(path.Join(prefix, "config.json"), cfg, 0o644, OriginBulkhead)
	a.putData(path.Join(prefix, "runtime.json"), rtJSON, 0o644, OriginBulkhead)
	return nil
}

// validName says a container or volume name is one path component.
func validName(n string) bool {
	return n != "" && n != "." && n != ".." && !strings.ContainsAny(n, "/\x00")
}

// volumes lays out each volume under containers/volumes/NAME as LinuxKit
// does: lower/ holds the image's content (empty for a blank volume), tmp/
// and merged/ are where the init mounts the writable view.
func (a *assembler) volumes() error {
	for _, v := range a.spec.Volumes {
		if !validName(v.Name) {
			return config.Errorf(v.Pos, "invalid volume name %q", v.Name)
		}
		base := path.Join(volumesDir, v.Name)
		for _, d := range []string{"lower", "tmp", "merged"} {
			a.mkdir(path.Join(base, d))
		}
		if v.Image == "" {
			continue
		}
		ft, _, err := a.flatten(v.Image, v.ImagePos, fixNone)
		if err != nil {
			return config.Errorf(v.Pos, "volume %q: %w", v.Name, err)
		}
		graft(a.t, path.Join(base, "lower"), ft)
	}
	return nil
}
