package config

import (
	"fmt"
	"github.com/bulkhead-dev/bulkhead/internal/healthcheck"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Pos is a place in a spec file. Line and Col are 1-based; a zero Pos means
// "no position known".
type Pos struct {
	File string `json:"-" yaml:"-"`
	Line int    `json:"-" yaml:"-"`
	Col  int    `json:"-" yaml:"-"`
}

// String renders the position as file:line:col.
func (p Pos) String() string {
	if p.Line == 0 {
		return p.File
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
}

// Spec is a parsed (and possibly merged) host spec. Its LinuxKit part keeps
// LinuxKit's meaning; the other sections are bulkhead's own.
type Spec struct {
	// The kernel image and its command line.
	Kernel Kernel `json:"kernel,omitempty" yaml:"kernel,omitempty"`
	// Images whose files are merged, in order, into the root: the init
	// (bulkhead/init:dev is bulkhead init and containerd), runc, and anything
	// else the host itself runs. Required.
	Init []Ref `json:"init,omitempty" yaml:"init,omitempty"`
	// Containers run once at boot, in order, each to completion, before services start.
	Onboot []*Image `json:"onboot,omitempty" yaml:"onboot,omitempty"`
	// Containers run once at shutdown, in order.
	Onshutdown []*Image `json:"onshutdown,omitempty" yaml:"onshutdown,omitempty"`
	// Long-running containers, started after onboot and restarted with backoff
	// when they exit.
	Services []*Image `json:"services,omitempty" yaml:"services,omitempty"`
	// Files, directories and links added to the root.
	Files []File `json:"files,omitempty" yaml:"files,omitempty"`
	// Named volumes containers bind by name (LinuxKit volumes).
	Volumes []Volume `json:"volumes,omitempty" yaml:"volumes,omitempty"`
	// Image trust policy: allowed origins, digest pinning and the keys that
	// must have signed which images (bulkhead's); org and image are
	// LinuxKit's legacy content-trust keys, accepted and ignored.
	Trust *LegacyTrust `json:"trust,omitempty" yaml:"trust,omitempty"`
	// The raw-efi disk's partition sizes and boot loader (bulkhead's).
	Disk *Disk `json:"disk,omitempty" yaml:"disk,omitempty"`
	// Boot counting and boot assessment of disk entries, and the host version
	// (bulkhead's).
	Boot *Boot `json:"boot,omitempty" yaml:"boot,omitempty"`
	// The gates every build must pass: kernel hardening, vulnerabilities,
	// secrets, minimality, limits (bulkhead's).
	Policy *Policy `json:"policy,omitempty" yaml:"policy,omitempty"`
	// What signed update bundles the host accepts (bulkhead's).
	Update *Update `json:"update,omitempty" yaml:"update,omitempty"`
	// The host API for operators: TLS 1.3 with client certificates from this CA
	// (bulkhead's).
	API *API `json:"api,omitempty" yaml:"api,omitempty"`
	// Secrets the host fetches at boot onto tmpfs, by name and source; the
	// values are never in the image (bulkhead's).
	Secrets []Secret `json:"secrets,omitempty" yaml:"secrets,omitempty"`
	// Where the host takes its name and user data from at boot (bulkhead's).
	Metadata *Metadata `json:"metadata,omitempty" yaml:"metadata,omitempty"`

	// Sources lists the files the spec was read from, in merge order.
	Sources []string `json:"-" yaml:"-"`
	// Warnings are what the spec may do but probably did not mean (a
	// relative mount destination, say), with positions, sorted.
	Warnings Errors `json:"-" yaml:"-"`

	// volumeUses are the binds that name a volume, checked after merging.
	volumeUses []volumeUse
}

// Ref is an image reference as written in the spec, with where it was written.
type Ref struct {
	Ref string
	Pos Pos
}

// MarshalYAML and MarshalJSON write a Ref as its plain string.
func (r Ref) MarshalYAML() (any, error) { return r.Ref, nil }

// Kernel is the kernel section.
type Kernel struct {
	// The kernel image: holds the kernel binary and, optionally, kernel.tar with modules.
	Image string `json:"image,omitempty" yaml:"image,omitempty"`
	// The kernel command line.
	Cmdline string  `json:"cmdline,omitempty" yaml:"cmdline,omitempty"`
	Binary  string  `json:"binary,omitempty" yaml:"binary,omitempty"` // default "kernel"
	Tar     *string `json:"tar,omitempty" yaml:"tar,omitempty"`       // default "kernel.tar"; "" or "none" turns it off
	// A CPU microcode cpio in the kernel image, prepended to the initrd.
	UCode string `json:"ucode,omitempty" yaml:"ucode,omitempty"`
	Pos   Pos    `json:"-" yaml:"-"` // of the image value
}

// Image is one entry of onboot, onshutdown or services.
type Image struct {
	// The container's name: letters, digits, ".", "_" and "-".
	Name string `json:"name" yaml:"name"`
	// The image reference.
	Image       string `json:"image" yaml:"image"`
	ImageConfig `json:",inline" yaml:",inline"`
	// Healthcheck is bulkhead's: how the init tells a service is healthy
	// (services only). A boot entry is blessed once containerd and every
	// service have been healthy for boot.settle.
	Healthcheck *healthcheck.Check `json:"healthcheck,omitempty" yaml:"healthcheck,omitempty"`
	// Secrets is bulkhead's: the secrets the service reads (services only,
	// see secrets.go).
	Secrets []SecretUse `json:"secrets,omitempty" yaml:"secrets,omitempty"`

	Pos      Pos `json:"-" yaml:"-"` // of the entry (the mapping)
	ImagePos Pos `json:"-" yaml:"-"` // of the image value
}

// ImageConfig holds the per-image runtime settings. The same shape is read
// from the spec and from an image's org.mobyproject.config label (JSON).
// A nil pointer means "not set", so spec > label > image config precedence
// can be applied field by field.
type ImageConfig struct {
	// The capabilities the process has (CAP_ prefix optional; "all" for every
	// one); default none.
	Capabilities *[]string `json:"capabilities,omitempty" yaml:"capabilities,omitempty"`
	// Capabilities added to those of the image's label.
	CapabilitiesAdd *[]string `json:"capabilities.add,omitempty" yaml:"capabilities.add,omitempty"`
	// Ambient capabilities.
	Ambient *[]string `json:"ambient,omitempty" yaml:"ambient,omitempty"`
	// OCI mounts, as in config.json (type, source, destination, options).
	Mounts *[]specs.Mount `json:"mounts,omitempty" yaml:"mounts,omitempty"`
	// Bind mounts SOURCE:DESTINATION[:OPTIONS]; a SOURCE without a leading /
	// names a volume.
	Binds *[]string `json:"binds,omitempty" yaml:"binds,omitempty"`
	// Bind mounts added to those of the image's label.
	BindsAdd *[]string `json:"binds.add,omitempty" yaml:"binds.add,omitempty"`
	// tmpfs mounts DESTINATION[:OPTIONS].
	Tmpfs *[]string `json:"tmpfs,omitempty" yaml:"tmpfs,omitempty"`
	// The process's arguments (default: the image's entrypoint and cmd).
	Command *[]string `json:"command,omitempty" yaml:"command,omitempty"`
	// Environment variables NAME=VALUE, added to the image's.
	Env *[]string `json:"env,omitempty" yaml:"env,omitempty"`
	// The working directory (absolute).
	Cwd string `json:"cwd,omitempty" yaml:"cwd,omitempty"`
	// Network namespace: host (the default), new, none, or a path to a namespace.
	Net string `json:"net,omitempty" yaml:"net,omitempty"`
	// PID namespace: new (the default) or host.
	Pid string `json:"pid,omitempty" yaml:"pid,omitempty"`
	// IPC namespace: host (the default) or new.
	Ipc string `json:"ipc,omitempty" yaml:"ipc,omitempty"`
	// UTS namespace: host (the default) or new.
	Uts string `json:"uts,omitempty" yaml:"uts,omitempty"`
	// User namespace: host (the default) or new.
	Userns string `json:"userns,omitempty" yaml:"userns,omitempty"`
	// Cgroupns is bulkhead's: "new" gives the container a cgroup namespace
	// of its own; "host" (the default, as in LinuxKit) shares the host's.
	Cgroupns string `json:"cgroupns,omitempty" yaml:"cgroupns,omitempty"`
	// The container's host name (needs uts: new).
	Hostname string `json:"hostname,omitempty" yaml:"hostname,omitempty"`
	// Mount the container's root read-only.
	Readonly *bool `json:"readonly,omitempty" yaml:"readonly,omitempty"`
	// Paths made inaccessible inside the container.
	MaskedPaths *[]string `json:"maskedPaths,omitempty" yaml:"maskedPaths,omitempty"`
	// Paths made read-only inside the container.
	ReadonlyPaths *[]string `json:"readonlyPaths,omitempty" yaml:"readonlyPaths,omitempty"`
	// The user the process runs as: a number or a name from the image's /etc/passwd.
	UID *ID `json:"uid,omitempty" yaml:"uid,omitempty"`
	// The group the process runs as: a number or a name from the image's /etc/group.
	GID *ID `json:"gid,omitempty" yaml:"gid,omitempty"`
	// Supplementary groups.
	AdditionalGids *[]ID `json:"additionalGids,omitempty" yaml:"additionalGids,omitempty"`
	// Set no_new_privs, so setuid binaries and file capabilities grant nothing.
	NoNewPrivileges *bool `json:"noNewPrivileges,omitempty" yaml:"noNewPrivileges,omitempty"`
	// The OOM score adjustment, -1000 to 1000.
	OOMScoreAdj *int `json:"oomScoreAdj,omitempty" yaml:"oomScoreAdj,omitempty"`
	// Mount propagation of the root: shared, slave, private, unbindable, or
	// their r-prefixed forms.
	RootfsPropagation *string `json:"rootfsPropagation,omitempty" yaml:"rootfsPropagation,omitempty"`
	// The container's cgroup path.
	CgroupsPath *string `json:"cgroupsPath,omitempty" yaml:"cgroupsPath,omitempty"`
	// OCI resource limits (memory, cpu, pids, devices ...), as in config.json.
	Resources *specs.LinuxResources `json:"resources,omitempty" yaml:"resources,omitempty"`
	// sysctls set in the container's namespaces: net.* needs net: new,
	// kernel.shm*, kernel.msg*, kernel.sem and fs.mqueue.* need ipc: new (runc
	// refuses them otherwise).
	Sysctl *map[string]string `json:"sysctl,omitempty" yaml:"sysctl,omitempty"`
	// Resource limits TYPE,SOFT,HARD (RLIMIT_ prefix optional).
	Rlimits *[]string `json:"rlimits,omitempty" yaml:"rlimits,omitempty"`
	// User namespace uid mappings.
	UIDMappings *[]specs.LinuxIDMapping `json:"uidMappings,omitempty" yaml:"uidMappings,omitempty"`
	// User namespace gid mappings.
	GIDMappings *[]specs.LinuxIDMapping `json:"gidMappings,omitempty" yaml:"gidMappings,omitempty"`
	// OCI annotations.
	Annotations *map[string]string `json:"annotations,omitempty" yaml:"annotations,omitempty"`
	// Device nodes the container may use.
	Devices *[]Device `json:"devices,omitempty" yaml:"devices,omitempty"`
	// What the init does around the container (LinuxKit's runtime): cgroups,
	// mounts, directories, interfaces, namespace bind mounts.
	Runtime *Runtime `json:"runtime,omitempty" yaml:"runtime,omitempty"`
}

// ID is a uid or gid: a number, or a name resolved against the image's
// /etc/passwd or /etc/group, or a container name (LinuxKit's "uid by
// container name"), resolved when the root is assembled.
type ID struct {
	Num  *uint32 `json:"-" yaml:"-"`
	Name string  `json:"-" yaml:"-"`
}

// Device is a device node a container may use (LinuxKit's devices entry).
type Device struct {
	// The device node's path, or "all" for every device of the type.
	Path string `json:"path" yaml:"path"`
	// b (block) or c (character).
	Type string `json:"type" yaml:"type"`
	// Major number.
	Major int64 `json:"major" yaml:"major"`
	// Minor number.
	Minor int64 `json:"minor" yaml:"minor"`
	// The node's mode, octal.
	Mode string `json:"mode,omitempty" yaml:"mode,omitempty"`
}

// Runtime is LinuxKit's runtime section: what init does around a container.
type Runtime struct {
	// cgroups to create.
	Cgroups *[]string `json:"cgroups,omitempty" yaml:"cgroups,omitempty"`
	// Mounts made before the container starts.
	Mounts *[]specs.Mount `json:"mounts,omitempty" yaml:"mounts,omitempty"`
	// Directories made before the container starts.
	Mkdir *[]string `json:"mkdir,omitempty" yaml:"mkdir,omitempty"`
	// Network interfaces to create or move into the container.
	Interfaces *[]Interface `json:"interfaces,omitempty" yaml:"interfaces,omitempty"`
	// Paths to bind the container's namespaces to.
	BindNS BindNS `json:"bindNS,omitempty" yaml:"bindNS,omitempty"`
	// The containerd namespace.
	Namespace *string `json:"namespace,omitempty" yaml:"namespace,omitempty"`
}

// Interface is a network interface to create or move into a container.
type Interface struct {
	// The interface's name inside the container.
	Name string `json:"name,omitempty" yaml:"name,omitempty"`
	// The kind of interface to create (veth, ...).
	Add string `json:"add,omitempty" yaml:"add,omitempty"`
	// The veth peer's name.
	Peer string `json:"peer,omitempty" yaml:"peer,omitempty"`
	// Create it in the root namespace and move it in.
	CreateInRoot bool `json:"createInRoot" yaml:"createInRoot"`
}

// BindNS names paths to bind-mount a container's namespaces to.
type BindNS struct {
	// Path to bind the cgroup namespace to.
	Cgroup *string `json:"cgroup,omitempty" yaml:"cgroup,omitempty"`
	// Path to bind the IPC namespace to.
	Ipc *string `json:"ipc,omitempty" yaml:"ipc,omitempty"`
	// Path to bind the mount namespace to.
	Mnt *string `json:"mnt,omitempty" yaml:"mnt,omitempty"`
	// Path to bind the network namespace to.
	Net *string `json:"net,omitempty" yaml:"net,omitempty"`
	// Path to bind the PID namespace to.
	Pid *string `json:"pid,omitempty" yaml:"pid,omitempty"`
	// Path to bind the user namespace to.
	User *string `json:"user,omitempty" yaml:"user,omitempty"`
	// Path to bind the UTS namespace to.
	Uts *string `json:"uts,omitempty" yaml:"uts,omitempty"`
}

// File is an entry of the files section.
type File struct {
	// Where in the root (relative; ".." is refused).
	Path string `json:"path" yaml:"path"`
	// Make a directory.
	Directory bool `json:"directory,omitempty" yaml:"directory,omitempty"`
	// Make a symbolic link to this target.
	Symlink string `json:"symlink,omitempty" yaml:"symlink,omitempty"`
	// The file's contents.
	Contents *string `json:"contents,omitempty" yaml:"contents,omitempty"`
	// Copy this file (relative to the spec's directory; "~/" is home); a regular
	// file only.
	Source string `json:"source,omitempty" yaml:"source,omitempty"`
	// Write the spec itself, as yaml or json.
	Metadata string `json:"metadata,omitempty" yaml:"metadata,omitempty"`
	// A missing source is skipped, not an error.
	Optional bool `json:"optional,omitempty" yaml:"optional,omitempty"`
	// Octal mode (default 0600 for files, 0700 for directories).
	Mode string `json:"mode,omitempty" yaml:"mode,omitempty"`
	// Owner: a number or a container name.
	UID *ID `json:"uid,omitempty" yaml:"uid,omitempty"`
	// Group: a number or a container name.
	GID *ID `json:"gid,omitempty" yaml:"gid,omitempty"`

	Pos Pos `json:"-" yaml:"-"`
}

// Volume is an entry of the volumes section.
type Volume struct {
	// The volume's name, bound as NAME:DESTINATION.
	Name string `json:"name" yaml:"name"`
	// An image whose contents fill the volume.
	Image string `json:"image,omitempty" yaml:"image,omitempty"`
	// Bind it read-only.
	ReadOnly bool `json:"readonly,omitempty" yaml:"readonly,omitempty"`
	// The format the image is unpacked as.
	Format string `json:"format,omitempty" yaml:"format,omitempty"`
	// The platforms of the image to unpack.
	Platforms []string `json:"platforms,omitempty" yaml:"platforms,omitempty"`

	Pos      Pos `json:"-" yaml:"-"`
	ImagePos Pos `json:"-" yaml:"-"`
}

// LegacyTrust is the trust section: LinuxKit's old content-trust keys (org,
// image; accepted and ignored) and bulkhead's trust policy (see trust.go).
type LegacyTrust struct {
	// LinuxKit content trust: accepted and ignored.
	Org []string `json:"org,omitempty" yaml:"org,omitempty"`
	// LinuxKit content trust: accepted and ignored.
	Image []string `json:"image,omitempty" yaml:"image,omitempty"`

	// Allow lists the reference prefixes (of expanded names, such as
	// "registry.example.com/" or "oci:") images may come from; empty
	// allows any.
	Allow []string `json:"allow,omitempty" yaml:"allow,omitempty"`
	// Pinned requires every image to be pinned by digest, in the spec or
	// the lock file.
	Pinned *bool `json:"pinned,omitempty" yaml:"pinned,omitempty"`
	// Keys names the public keys that Require uses.
	Keys []TrustKey `json:"keys,omitempty" yaml:"keys,omitempty"`
	// Require lists which keys must have signed which images.
	Require []TrustRule `json:"require,omitempty" yaml:"require,omitempty"`

	Pos       Pos `json:"-" yaml:"-"` // of the section
	PinnedPos Pos `json:"-" yaml:"-"` // of the pinned value
}
