package ocispec

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/bulkhead-dev/bulkhead/builder/config"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// defaultMounts are LinuxKit's (and Docker's) standard mounts. Unlike
// Docker's, they leave out /dev/shm and /dev/mqueue. A read-only container
// also gets /dev and /sys read-only; /sys/fs/cgroup always is.
func defaultMounts(readonly bool) []specs.Mount {
	dev := []string{"nosuid", "strictatime", "mode=755", "size=65536k"}
	sys := []string{"nosuid", "noexec", "nodev"}
	if readonly {
		dev = append(dev, "ro")
		sys = append(sys, "ro")
	}
	return []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "nodev", "noexec", "relatime"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: dev},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: sys},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
	}
}

// buildMounts layers the default mounts, tmpfs, binds and mounts, in that
// order; a later entry replaces an earlier one with the same destination.
// The result is sorted by destination, so /dev comes before /dev/pts.
func buildMounts(s settings, readonly bool) ([]specs.Mount, error) {
	byDest := map[string]specs.Mount{}
	add := func(m specs.Mount) { byDest[m.Destination] = m }
	for _, m := range defaultMounts(readonly) {
		add(m)
	}
	for _, t := range pick(s.label.Tmpfs, s.spec.Tmpfs) {
		m, err := parseTmpfs(t)
		if err != nil {
			return nil, err
		}
		add(m)
	}
	// spec binds replace the label's; spec binds.add extend them
	for _, b := range pick(withAdded(s.label.Binds, s.spec.BindsAdd), s.spec.Binds) {
		m, err := parseBind(b)
		if err != nil {
			return nil, err
		}
		add(m)
	}
	for _, m := range pick(s.label.Mounts, s.spec.Mounts) {
		m, err := completeMount(m)
		if err != nil {
			return nil, err
		}
		add(m)
	}
	list := make([]specs.Mount, 0, len(byDest))
	for _, m := range byDest {
		list = append(list, m)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Destination < list[j].Destination })
	return list, nil
}

// parseTmpfs reads "dest[:opt,opt...]".
func parseTmpfs(t string) (specs.Mount, error) {
	dest, opts, hasOpts := strings.Cut(t, ":")
	if strings.Contains(opts, ":") {
		return specs.Mount{}, fmt.Errorf("parsing tmpfs %q: too many ':'", t)
	}
	m := specs.Mount{Destination: dest, Type: "tmpfs", Source: "tmpfs"}
	if hasOpts {
		m.Options = strings.Split(opts, ",")
	}
	return m, nil
}

// parseBind reads "src:dest[:opt,opt...]" (see config.ParseBind). Without
// options a bind is rw,rbind,rshared; with options it gets them and rbind.
func parseBind(entry string) (specs.Mount, error) {
	b, err := config.ParseBind(entry)
	if err != nil {
		return specs.Mount{}, fmt.Errorf("parsing binds: %w", err)
	}
	opts := []string{"rw", "rbind", "rshared"}
	if b.Options != nil {
		opts = append(slices.Clone(b.Options), "rbind")
	}
	return specs.Mount{Destination: b.Destination, Type: "bind", Source: b.Source, Options: opts}, nil
}

// completeMount fills in what a full-form mount may leave out: the type
// from a well-known source (or tmpfs for /dev), the source from the type,
// the destination from the type's usual place. A relative destination is
// made absolute inside the container, as runc would resolve it.
func completeMount(m specs.Mount) (specs.Mount, error) {
	typ, src, dest := m.Type, m.Source, m.Destination
	if typ == "" {
		switch src {
		case "mqueue", "devpts", "proc", "sysfs", "cgroup":
			typ = src
		}
	}
	if typ == "" && dest == "/dev" {
		typ = "tmpfs"
	}
	if typ == "" {
		return specs.Mount{}, fmt.Errorf("mount on %q: missing type", dest)
	}
	if src == "" {
		src = typ
	}
	if dest == "" {
		dest = config.DefaultMountpoint(typ)
	}
	dest = config.MountDestination(dest)
	if dest == "" {
		return specs.Mount{}, fmt.Errorf("mount of type %q: missing destination", typ)
	}
	return specs.Mount{Destination: dest, Type: typ, Source: src, Options: m.Options}, nil
}
