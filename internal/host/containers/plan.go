package containers

import (
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Op is one kind of host-side preparation step.
type Op int

// The steps Plan produces.
const (
	Mkdir  Op = iota // create Path (and parents), mode 0755
	Mount            // mount Source on Path
	Cgroup           // create the cgroup v2 directory Path
)

// Step is one host-side action before the container is created.
type Step struct {
	Op     Op
	Path   string
	Source string
	Type   string
	Flags  uintptr
	Data   string
}

// Plan lists, in order, what the init does on the host before creating the
// container, as LinuxKit's init does: runtime.json's mounts (creating each
// destination, and an overlay's upperdir and workdir, first), then its mkdir
// entries, then its cgroups. Relative paths are inside the container's root.
// When no runtime mount covers the root, the root is set up by convention
// first: a bind of rootfs on itself, or for a writable container a tmpfs on
// tmp and an overlay of lower/ under it.
func Plan(b Bundle) []Step {
	var steps []Step
	if !coversRoot(b) {
		steps = append(steps, rootSteps(b)...)
	}
	for _, m := range b.Runtime.Mounts {
		dest := b.abs(m.Destination)
		steps = append(steps, Step{Op: Mkdir, Path: dest})
		for _, o := range m.Options {
			k, v, ok := strings.Cut(o, "=")
			if ok && (k == "upperdir" || k == "workdir") {
				steps = append(steps, Step{Op: Mkdir, Path: v})
			}
		}
		flags, data := MountOptions(m.Options)
		steps = append(steps, Step{Op: Mount, Path: dest, Source: m.Source, Type: m.Type, Flags: flags, Data: data})
	}
	for _, d := range b.Runtime.Mkdir {
		steps = append(steps, Step{Op: Mkdir, Path: b.abs(d)})
	}
	for _, c := range b.Runtime.Cgroups {
		steps = append(steps, Step{Op: Cgroup, Path: filepath.Join("/sys/fs/cgroup", c)})
	}
	return steps
}

// abs resolves a runtime.json path: absolute on the host, or relative to the
// container's root.
func (b Bundle) abs(p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(b.Rootfs(), p)
}

func coversRoot(b Bundle) bool {
	for _, m := range b.Runtime.Mounts {
		if b.abs(m.Destination) == b.Rootfs() {
			return true
		}
	}
	return false
}

func rootSteps(b Bundle) []Step {
	root := b.Rootfs()
	if !b.Writable {
		return []Step{{Op: Mount, Path: root, Source: root, Flags: unix.MS_BIND}}
	}
	tmp := filepath.Join(b.Dir, "tmp")
	upper, work := filepath.Join(tmp, "upper"), filepath.Join(tmp, "work")
	return []Step{
		{Op: Mount, Path: tmp, Source: "tmpfs", Type: "tmpfs", Data: "mode=0755"},
		{Op: Mount, Path: tmp, Flags: unix.MS_PRIVATE},
		{Op: Mkdir, Path: upper},
		{Op: Mkdir, Path: work},
		{Op: Mount, Path: root, Source: "overlay", Type: "overlay",
			Data: "lowerdir=" + filepath.Join(b.Dir, "lower") + ",upperdir=" + upper + ",workdir=" + work},
	}
}

// mountFlags maps fstab-style options to mount(2) flags; clear marks the
// options that turn a flag off.
var mountFlags = map[string]struct {
	clear bool
	flag  uintptr
}{
	"async":         {true, unix.MS_SYNCHRONOUS},
	"atime":         {true, unix.MS_NOATIME},
	"bind":          {false, unix.MS_BIND},
	"defaults":      {false, 0},
	"dev":           {true, unix.MS_NODEV},
	"diratime":      {true, unix.MS_NODIRATIME},
	"dirsync":       {false, unix.MS_DIRSYNC},
	"exec":          {true, unix.MS_NOEXEC},
	"mand":          {false, unix.MS_MANDLOCK},
	"noatime":       {false, unix.MS_NOATIME},
	"nodev":         {false, unix.MS_NODEV},
	"nodiratime":    {false, unix.MS_NODIRATIME},
	"noexec":        {false, unix.MS_NOEXEC},
	"nomand":        {true, unix.MS_MANDLOCK},
	"norelatime":    {true, unix.MS_RELATIME},
	"nostrictatime": {true, unix.MS_STRICTATIME},
	"nosuid":        {false, unix.MS_NOSUID},
	"private":       {false, unix.MS_PRIVATE},
	"rprivate":      {false, unix.MS_PRIVATE | unix.MS_REC},
	"rbind":         {false, unix.MS_BIND | unix.MS_REC},
	"relatime":      {false, unix.MS_RELATIME},
	"remount":       {false, unix.MS_REMOUNT},
	"ro":            {false, unix.MS_RDONLY},
	"rw":            {true, unix.MS_RDONLY},
	"shared":        {false, unix.MS_SHARED},
	"rshared":       {false, unix.MS_SHARED | unix.MS_REC},
	"slave":         {false, unix.MS_SLAVE},
	"rslave":        {false, unix.MS_SLAVE | unix.MS_REC},
	"strictatime":   {false, unix.MS_STRICTATIME},
	"suid":          {true, unix.MS_NOSUID},
	"sync":          {false, unix.MS_SYNCHRONOUS},
	"unbindable":    {false, unix.MS_UNBINDABLE},
	"runbindable":   {false, unix.MS_UNBINDABLE | unix.MS_REC},
}

// MountOptions splits fstab-style options into mount(2) flags and the
// file-system data string (every option that is not a flag, in order).
func MountOptions(options []string) (uintptr, string) {
	var flags uintptr
	var data []string
	for _, o := range options {
		f, ok := mountFlags[o]
		switch {
		case !ok:
			data = append(data, o)
		case f.clear:
			flags &^= f.flag
		default:
			flags |= f.flag
		}
	}
	return flags, strings.Join(data, ",")
}
