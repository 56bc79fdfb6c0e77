package ocispec

import (
	"path"

	"github.com/bulkhead-dev/bulkhead/builder/config"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// runtime merges the runtime section field by field (spec over label) and,
// like LinuxKit, fills every unset field with an empty value so
// runtime.json always has the same keys.
func (s settings) runtime() config.Runtime {
	l, sp := s.label.Runtime, s.spec.Runtime
	if l == nil {
		l = &config.Runtime{}
	}
	if sp == nil {
		sp = &config.Runtime{}
	}
	return config.Runtime{
		Cgroups:    nonNil(pickPtr(l.Cgroups, sp.Cgroups)),
		Mounts:     nonNil(pickPtr(l.Mounts, sp.Mounts)),
		Mkdir:      nonNil(pickPtr(l.Mkdir, sp.Mkdir)),
		Interfaces: nonNil(pickPtr(l.Interfaces, sp.Interfaces)),
		BindNS: config.BindNS{
			Cgroup: nonNil(pickPtr(l.BindNS.Cgroup, sp.BindNS.Cgroup)),
			Ipc:    nonNil(pickPtr(l.BindNS.Ipc, sp.BindNS.Ipc)),
			Mnt:    nonNil(pickPtr(l.BindNS.Mnt, sp.BindNS.Mnt)),
			Net:    nonNil(pickPtr(l.BindNS.Net, sp.BindNS.Net)),
			Pid:    nonNil(pickPtr(l.BindNS.Pid, sp.BindNS.Pid)),
			User:   nonNil(pickPtr(l.BindNS.User, sp.BindNS.User)),
			Uts:    nonNil(pickPtr(l.BindNS.Uts, sp.BindNS.Uts)),
		},
		Namespace: nonNil(pickPtr(l.Namespace, sp.Namespace)),
	}
}

// nonNil returns p, or a pointer to an empty value (an empty, non-nil
// slice for slices, so that it is written as [] and not null).
func nonNil[T any](p *T) *T {
	if p != nil {
		return p
	}
	v := new(T)
	switch x := any(v).(type) {
	case *[]string:
		*x = []string{}
	case *[]specs.Mount:
		*x = []specs.Mount{}
	case *[]config.Interface:
		*x = []config.Interface{}
	}
	return v
}

// RootfsMounts are the mounts LinuxKit puts first in runtime.json's mounts
// to give the bundle at dir (for example containers/services/getty) its
// rootfs: for a read-only root, a bind of root (where the image was
// unpacked: dir/rootfs, or another bundle's root when an image is used
// twice) onto dir/rootfs; otherwise a tmpfs on dir/tmp and an overlay of
// root (dir/lower, or the other bundle's) under it. Paths are relative to
// the host root, as in LinuxKit.
func RootfsMounts(dir, root string, readonly bool) []specs.Mount {
	rootfs := "/" + path.Join(dir, "rootfs")
	if readonly {
		return []specs.Mount{{Source: "/" + root, Destination: rootfs, Options: []string{"bind"}}}
	}
	tmp := "/" + path.Join(dir, "tmp")
	return []specs.Mount{
		{Source: "tmpfs", Type: "tmpfs", Destination: tmp},
		{Destination: tmp, Options: []string{"remount", "private"}},
		{Source: "overlay", Type: "overlay", Destination: rootfs, Options: []string{
			"lowerdir=/" + root,
			"upperdir=" + path.Join(tmp, "upper"),
			"workdir=" + path.Join(tmp, "work"),
		}},
	}
}
