package ocispec

import (
	"encoding/json"
	"fmt"

	"github.com/bulkhead-dev/bulkhead/builder/config"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Input is one container entry with what is needed to build its specs.
type Input struct {
	// Image is the spec entry (name, image, settings).
	Image *config.Image
	// Config is the image's config file (Env, Cmd, Entrypoint, WorkingDir,
	// Labels). It may be nil.
	Config *v1.ConfigFile
	// IDs maps container names to their uid/gid (LinuxKit's "uid by
	// container name", see AssignIDs). It is used when uid, gid or
	// additionalGids name a container.
	IDs map[string]uint32
	// LookupUser and LookupGroup resolve names against the image's
	// /etc/passwd and /etc/group. Either may be nil.
	LookupUser  func(name string) (uid, gid uint32, ok bool)
	LookupGroup func(name string) (gid uint32, ok bool)
}

// Result is what Generate makes of an Input.
type Result struct {
	// Spec is the OCI runtime spec, written as config.json.
	Spec *specs.Spec
	// Runtime is LinuxKit's runtime section, written as runtime.json.
	Runtime config.Runtime
	// Readonly says the root is read-only: the image is unpacked to
	// rootfs/; otherwise to lower/, with tmp/ for an overlay on rootfs/.
	Readonly bool
}

// Generate builds the OCI runtime spec and runtime.json content for one
// container entry.
func Generate(in Input) (*Result, error) {
	if in.Image == nil {
		return nil, fmt.Errorf("generating oci spec: no image entry")
	}
	label, err := imageLabel(in.Config)
	if err != nil {
		return nil, fmt.Errorf("generating oci spec for %s: %w", in.Image.Name, err)
	}
	s := settings{spec: &in.Image.ImageConfig, label: label}
	spec, err := build(s, in)
	if err != nil {
		return nil, fmt.Errorf("generating oci spec for %s: %w", in.Image.Name, err)
	}
	return &Result{Spec: spec, Runtime: s.runtime(), Readonly: spec.Root.Readonly}, nil
}

// build assembles the spec from its parts.
func build(s settings, in Input) (*specs.Spec, error) {
	readonly := s.readonly()
	process, err := buildProcess(s, in)
	if err != nil {
		return nil, err
	}
	mounts, err := buildMounts(s, readonly)
	if err != nil {
		return nil, err
	}
	linux, err := buildLinux(s)
	if err != nil {
		return nil, err
	}
	return &specs.Spec{
		Version:     specs.Version,
		Process:     process,
		Root:        &specs.Root{Path: "rootfs", Readonly: readonly},
		Hostname:    firstNonEmpty(s.spec.Hostname, s.label.Hostname),
		Mounts:      mounts,
		Annotations: copyMap(pick(s.label.Annotations, s.spec.Annotations)),
		Linux:       linux,
	}, nil
}

// buildProcess makes the process section: what runs, as whom, with what.
func buildProcess(s settings, in Input) (*specs.Process, error) {
	user, err := resolveUser(s, in)
	if err != nil {
		return nil, err
	}
	caps, err := capabilities(s)
	if err != nil {
		return nil, err
	}
	rlimits, err := parseRlimits(pick(s.label.Rlimits, s.spec.Rlimits))
	if err != nil {
		return nil, err
	}
	img := imageConfig(in.Config)
	return &specs.Process{
		Terminal:        false,
		User:            user,
		Args:            s.command(img),
		Env:             s.env(img),
		Cwd:             firstNonEmpty(s.spec.Cwd, s.label.Cwd, img.WorkingDir, "/"),
		Capabilities:    caps,
		Rlimits:         rlimits,
		NoNewPrivileges: pick(s.label.NoNewPrivileges, s.spec.NoNewPrivileges),
		OOMScoreAdj:     pickPtr(s.label.OOMScoreAdj, s.spec.OOMScoreAdj),
	}, nil
}

// buildLinux makes the linux section: namespaces, cgroup, devices, paths.
func buildLinux(s settings) (*specs.Linux, error) {
	resources := copyResources(pickPtr(s.label.Resources, s.spec.Resources))
	devices, rules, err := buildDevices(pick(s.label.Devices, s.spec.Devices))
	if err != nil {
		return nil, err
	}
	resources.Devices = append(resources.Devices, rules...)
	return &specs.Linux{
		UIDMappings:       pick(s.label.UIDMappings, s.spec.UIDMappings),
		GIDMappings:       pick(s.label.GIDMappings, s.spec.GIDMappings),
		Sysctl:            copyMap(pick(s.label.Sysctl, s.spec.Sysctl)),
		Resources:         resources,
		CgroupsPath:       pick(s.label.CgroupsPath, s.spec.CgroupsPath),
		Namespaces:        s.namespaces(),
		Devices:           devices,
		RootfsPropagation: pick(s.label.RootfsPropagation, s.spec.RootfsPropagation),
		MaskedPaths:       pick(s.label.MaskedPaths, s.spec.MaskedPaths),
		ReadonlyPaths:     pick(s.label.ReadonlyPaths, s.spec.ReadonlyPaths),
	}, nil
}

// Marshal writes a spec as config.json: indented, with map keys sorted, the
// same bytes for the same spec (and the layout LinuxKit writes).
func Marshal(s *specs.Spec) ([]byte, error) {
	b, err := json.MarshalIndent(s, "", "    ")
	if err != nil {
		return nil, fmt.Errorf("marshalling oci spec: %w", err)
	}
	return b, nil
}

// MarshalRuntime writes runtime.json the way Marshal writes config.json.
func MarshalRuntime(r config.Runtime) ([]byte, error) {
	b, err := json.MarshalIndent(r, "", "    ")
	if err != nil {
		return nil, fmt.Errorf("marshalling runtime config: %w", err)
	}
	return b, nil
}

// imageConfig returns the image's config, or an empty one.
func imageConfig(cf *v1.ConfigFile) v1.Config {
	if cf == nil {
		return v1.Config{}
	}
	return cf.Config
}
