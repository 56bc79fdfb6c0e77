package ocispec

import specs "github.com/opencontainers/runtime-spec/specs-go"

// namespaces lists the container's namespaces in LinuxKit's order. net, ipc,
// uts, user and cgroup are shared with the host unless asked for (cgroupns
// is bulkhead's key; LinuxKit never makes a cgroup namespace); pid and
// mount are new (pid unless "host").
func (s settings) namespaces() []specs.LinuxNamespace {
	var out []specs.LinuxNamespace
	add := func(typ specs.LinuxNamespaceType, value string) {
		if ns, ok := namespace(typ, value); ok {
			out = append(out, ns)
		}
	}
	add(specs.NetworkNamespace, firstNonEmpty(s.spec.Net, s.label.Net, "host"))
	add(specs.IPCNamespace, firstNonEmpty(s.spec.Ipc, s.label.Ipc, "host"))
	add(specs.UTSNamespace, firstNonEmpty(s.spec.Uts, s.label.Uts, "host"))
	add(specs.PIDNamespace, firstNonEmpty(s.spec.Pid, s.label.Pid, "new"))
	add(specs.UserNamespace, firstNonEmpty(s.spec.Userns, s.label.Userns, "host"))
	add(specs.MountNamespace, "new")
	add(specs.CgroupNamespace, firstNonEmpty(s.spec.Cgroupns, s.label.Cgroupns, "host"))
	return out
}

// namespace reads a namespace setting: "host" (or "root") shares the
// host's, "new" (or "none") makes a new one, anything else is the path of
// an existing namespace to join. LinuxKit takes "none" as a path for
// every namespace but net; here it means a new namespace for all of them.
func namespace(typ specs.LinuxNamespaceType, value string) (specs.LinuxNamespace, bool) {
	switch value {
	case "host", "root":
		return specs.LinuxNamespace{}, false
	case "new", "none":
		return specs.LinuxNamespace{Type: typ}, true
	}
	return specs.LinuxNamespace{Type: typ, Path: value}, true
}
