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
	Kernel     Kernel   `json:"kernel,omitempty" yaml:"kernel,omitempty"`
	Init       []Ref    `json:"init,omitempty" yaml:"init,omitempty"`
	Onboot     []*Image `json:"onboot,omitempty" yaml:"onboot,omitempty"`
	Onshutdown []*Image `json:"onshutdown,omitempty" yaml:"onshutdown,omitempty"`
	Services   []*Image `json:"services,omitempty" yaml:"services,omitempty"`
	Files      []File   `json:"files,omitempty" yaml:"files,omitempty"`
	Volumes    []Volume `json:"volumes,omitempty" yaml:"volumes,omitempty"`
	// Trust is LinuxKit's legacy trust section: accepted and ignored.
	Trust *LegacyTrust `json:"trust,omitempty" yaml:"trust,omitempty"`
	// Disk, Boot and Policy are bulkhead's own sections (see host.go), Update
	// too (update.go).
	Disk   *Disk   `json:"disk,omitempty" yaml:"disk,omitempty"`
	Boot   *Boot   `json:"boot,omitempty" yaml:"boot,omitempty"`
	Policy *Policy `json:"policy,omitempty" yaml:"policy,omitempty"`
	Update *Update `json:"update,omitempty" yaml:"update,omitempty"`
	API    *API    `json:"api,omitempty" yaml:"api,omitempty"`
	// Secrets are fetched by the host at boot (secrets.go): names and
	// sources only.
	Secrets []Secret `json:"secrets,omitempty" yaml:"secrets,omitempty"`
	// Metadata names the provider of the host's name and user data
	// (metadata.go).
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
	Image   string  `json:"image,omitempty" yaml:"image,omitempty"`
	Cmdline string  `json:"cmdline,omitempty" yaml:"cmdline,omitempty"`
	Binary  string  `json:"binary,omitempty" yaml:"binary,omitempty"` // default "kernel"
	Tar     *string `json:"tar,omitempty" yaml:"tar,omitempty"`       // default "kernel.tar"; "" or "none" turns it off
	UCode   string  `json:"ucode,omitempty" yaml:"ucode,omitempty"`
	Pos     Pos     `json:"-" yaml:"-"` // of the image value
}

// Image is one entry of onboot, onshutdown or services.
type Image struct {
	Name        string `json:"name" yaml:"name"`
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
	Capabilities    *[]string      `json:"capabilities,omitempty" yaml:"capabilities,omitempty"`
	CapabilitiesAdd *[]string      `json:"capabilities.add,omitempty" yaml:"capabilities.add,omitempty"`
	Ambient         *[]string      `json:"ambient,omitempty" yaml:"ambient,omitempty"`
	Mounts          *[]specs.Mount `json:"mounts,omitempty" yaml:"mounts,omitempty"`
	Binds           *[]string      `json:"binds,omitempty" yaml:"binds,omitempty"`
	BindsAdd        *[]string      `json:"binds.add,omitempty" yaml:"binds.add,omitempty"`
	Tmpfs           *[]string      `json:"tmpfs,omitempty" yaml:"tmpfs,omitempty"`
	Command         *[]string      `json:"command,omitempty" yaml:"command,omitempty"`
	Env             *[]string      `json:"env,omitempty" yaml:"env,omitempty"`
	Cwd             string         `json:"cwd,omitempty" yaml:"cwd,omitempty"`
	Net             string         `json:"net,omitempty" yaml:"net,omitempty"`
	Pid             string         `json:"pid,omitempty" yaml:"pid,omitempty"`
	Ipc             string         `json:"ipc,omitempty" yaml:"ipc,omitempty"`
	Uts             string         `json:"uts,omitempty" yaml:"uts,omitempty"`
	Userns          string         `json:"userns,omitempty" yaml:"userns,omitempty"`
	// Cgroupns is bulkhead's: "new" gives the container a cgroup namespace
	// of its own; "host" (the default, as in LinuxKit) shares the host's.
	Cgroupns          string                  `json:"cgroupns,omitempty" yaml:"cgroupns,omitempty"`
	Hostname          string                  `json:"hostname,omitempty" yaml:"hostname,omitempty"`
	Readonly          *bool                   `json:"readonly,omitempty" yaml:"readonly,omitempty"`
	MaskedPaths       *[]string               `json:"maskedPaths,omitempty" yaml:"maskedPaths,omitempty"`
	ReadonlyPaths     *[]string               `json:"readonlyPaths,omitempty" yaml:"readonlyPaths,omitempty"`
	UID               *ID                     `json:"uid,omitempty" yaml:"uid,omitempty"`
	GID               *ID                     `json:"gid,omitempty" yaml:"gid,omitempty"`
	AdditionalGids    *[]ID                   `json:"additionalGids,omitempty" yaml:"additionalGids,omitempty"`
	NoNewPrivileges   *bool                   `json:"noNewPrivileges,omitempty" yaml:"noNewPrivileges,omitempty"`
	OOMScoreAdj       *int                    `json:"oomScoreAdj,omitempty" yaml:"oomScoreAdj,omitempty"`
	RootfsPropagation *string                 `json:"rootfsPropagation,omitempty" yaml:"rootfsPropagation,omitempty"`
	CgroupsPath       *string                 `json:"cgroupsPath,omitempty" yaml:"cgroupsPath,omitempty"`
	Resources         *specs.LinuxResources   `json:"resources,omitempty" yaml:"resources,omitempty"`
	Sysctl            *map[string]string      `json:"sysctl,omitempty" yaml:"sysctl,omitempty"`
	Rlimits           *[]string               `json:"rlimits,omitempty" yaml:"rlimits,omitempty"`
	UIDMappings       *[]specs.LinuxIDMapping `json:"uidMappings,omitempty" yaml:"uidMappings,omitempty"`
	GIDMappings       *[]specs.LinuxIDMapping `json:"gidMappings,omitempty" yaml:"gidMappings,omitempty"`
	Annotations       *map[string]string      `json:"annotations,omitempty" yaml:"annotations,omitempty"`
	Devices           *[]Device               `json:"devices,omitempty" yaml:"devices,omitempty"`
	Runtime           *Runtime                `json:"runtime,omitempty" yaml:"runtime,omitempty"`
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
	Path  string `json:"path" yaml:"path"`
	Type  string `json:"type" yaml:"type"`
	Major int64  `json:"major" yaml:"major"`
	Minor int64  `json:"minor" yaml:"minor"`
	Mode  string `json:"mode,omitempty" yaml:"mode,omitempty"`
}

// Runtime is LinuxKit's runtime section: what init does around a container.
type Runtime struct {
	Cgroups    *[]string      `json:"cgroups,omitempty" yaml:"cgroups,omitempty"`
	Mounts     *[]specs.Mount `json:"mounts,omitempty" yaml:"mounts,omitempty"`
	Mkdir      *[]string      `json:"mkdir,omitempty" yaml:"mkdir,omitempty"`
	Interfaces *[]Interface   `json:"interfaces,omitempty" yaml:"interfaces,omitempty"`
	BindNS     BindNS         `json:"bindNS,omitempty" yaml:"bindNS,omitempty"`
	Namespace  *string        `json:"namespace,omitempty" yaml:"namespace,omitempty"`
}

// Interface is a network interface to create or move into a container.
type Interface struct {
	Name         string `json:"name,omitempty" yaml:"name,omitempty"`
	Add          string `json:"add,omitempty" yaml:"add,omitempty"`
	Peer         string `json:"peer,omitempty" yaml:"peer,omitempty"`
	CreateInRoot bool   `json:"createInRoot" yaml:"createInRoot"`
}

// BindNS names paths to bind-mount a container's namespaces to.
type BindNS struct {
	Cgroup *string `json:"cgroup,omitempty" yaml:"cgroup,omitempty"`
	Ipc    *string `json:"ipc,omitempty" yaml:"ipc,omitempty"`
	Mnt    *string `json:"mnt,omitempty" yaml:"mnt,omitempty"`
	Net    *string `json:"net,omitempty" yaml:"net,omitempty"`
	Pid    *string `json:"pid,omitempty" yaml:"pid,omitempty"`
	User   *string `json:"user,omitempty" yaml:"user,omitempty"`
	Uts    *string `json:"uts,omitempty" yaml:"uts,omitempty"`
}

// File is an entry of the files section.
type File struct {
	Path      string  `json:"path" yaml:"path"`
	Directory bool    `json:"directory,omitempty" yaml:"directory,omitempty"`
	Symlink   string  `json:"symlink,omitempty" yaml:"symlink,omitempty"`
	Contents  *string `json:"contents,omitempty" yaml:"contents,omitempty"`
	Source    string  `json:"source,omitempty" yaml:"source,omitempty"`
	Metadata  string  `json:"metadata,omitempty" yaml:"metadata,omitempty"`
	Optional  bool    `json:"optional,omitempty" yaml:"optional,omitempty"`
	Mode      string  `json:"mode,omitempty" yaml:"mode,omitempty"`
	UID       *ID     `json:"uid,omitempty" yaml:"uid,omitempty"`
	GID       *ID     `json:"gid,omitempty" yaml:"gid,omitempty"`

	Pos Pos `json:"-" yaml:"-"`
}

// Volume is an entry of the volumes section.
type Volume struct {
	Name      string   `json:"name" yaml:"name"`
	Image     string   `json:"image,omitempty" yaml:"image,omitempty"`
	ReadOnly  bool     `json:"readonly,omitempty" yaml:"readonly,omitempty"`
	Format    string   `json:"format,omitempty" yaml:"format,omitempty"`
	Platforms []string `json:"platforms,omitempty" yaml:"platforms,omitempty"`

	Pos      Pos `json:"-" yaml:"-"`
	ImagePos Pos `json:"-" yaml:"-"`
}

// LegacyTrust is the trust section: LinuxKit's old content-trust keys (org,
// image; accepted and ignored) and bulkhead's trust policy (see trust.go).
type LegacyTrust struct {
	Org   []string `json:"org,omitempty" yaml:"org,omitempty"`
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
