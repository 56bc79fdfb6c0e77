// Package ocispec turns one container entry of a host spec (onboot,
// onshutdown or services) and its image's config into the two files its
// bundle carries: the OCI runtime spec (config.json) and LinuxKit's
// runtime.json.
//
// It keeps LinuxKit's semantics (its moby ConfigToOCI): settings come from
// the spec entry, else from the image's org.mobyproject.config label, else
// (for command, env and cwd only) from the image config; a container gets
// no capabilities unless it names them, new pid and mount namespaces, the
// host's net, ipc, uts and cgroup namespaces (LinuxKit makes no cgroup
// namespace; bulkhead's cgroupns: new asks for one), and LinuxKit's
// default mounts.
package ocispec
