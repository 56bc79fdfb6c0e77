// Package containers reads the containers the build unpacked under /containers
// (LinuxKit's layout: onboot/NNN-name, onshutdown/NNN-name, services/name,
// each with config.json, runtime.json and a root) and plans what the init
// does on the host before it hands one to containerd.
package containers

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Kind is a group of containers, named as its directory under /containers.
type Kind string

// The three groups, in the order a host uses them.
const (
	Onboot     Kind = "onboot"
	Services   Kind = "services"
	Onshutdown Kind = "onshutdown"
)

// Bundle is one unpacked container.
type Bundle struct {
	Kind Kind
	// Name is the container's name in the spec (onboot "001-dhcpcd" is "dhcpcd").
	Name string
	// Dir is the bundle directory, absolute.
	Dir string
	// Spec is config.json with Root.Path made absolute.
	Spec *specs.Spec
	// Runtime is runtime.json (empty when the file is absent, as in LinuxKit).
	Runtime Runtime
	// Writable is true when the root is an overlay of lower/ (LinuxKit's
	// layout for containers that are not readonly).
	Writable bool
}

// Rootfs is the directory the container's root is mounted on.
func (b Bundle) Rootfs() string { return filepath.Join(b.Dir, "rootfs") }

// Runtime is LinuxKit's runtime.json: what the init does around a container.
// It mirrors builder/config.Runtime without importing the builder.
type Runtime struct {
	Cgroups    []string      `json:"cgroups,omitempty"`
	Mounts     []specs.Mount `json:"mounts,omitempty"`
	Mkdir      []string      `json:"mkdir,omitempty"`
	Interfaces []Interface   `json:"interfaces,omitempty"`
	BindNS     BindNS        `json:"bindNS"`
	Namespace  string        `json:"namespace,omitempty"`
}

// Interface is a network interface to create in, or move into, the
// container's network namespace.
type Interface struct {
	Name         string `json:"name,omitempty"`
	Add          string `json:"add,omitempty"`
	Peer         string `json:"peer,omitempty"`
	CreateInRoot bool   `json:"createInRoot"`
}

// BindNS names host paths to bind the container's namespaces to.
type BindNS struct {
	Cgroup string `json:"cgroup,omitempty"`
	Ipc    string `json:"ipc,omitempty"`
	Mnt    string `json:"mnt,omitempty"`
	Net    string `json:"net,omitempty"`
	Pid    string `json:"pid,omitempty"`
	User   string `json:"user,omitempty"`
	Uts    string `json:"uts,omitempty"`
}

// indexPrefix is the NNN- an onboot or onshutdown directory starts with.
var indexPrefix = regexp.MustCompile(`^[0-9]+-`)

// List reads every bundle of kind under root (the host root, normally "/"),
// in directory-name order. A missing group is empty.
func List(root string, kind Kind) ([]Bundle, error) {
	dir := filepath.Join(root, "containers", string(kind))
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing %s containers: %w", kind, err)
	}
	var out []Bundle
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		b, err := Load(filepath.Join(dir, e.Name()), kind)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

// Load reads the bundle in dir.
func Load(dir string, kind Kind) (Bundle, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return Bundle{}, fmt.Errorf("loading bundle %s: %w", dir, err)
	}
	base := filepath.Base(dir)
	b := Bundle{Kind: kind, Name: base, Dir: dir}
	if kind != Services {
		b.Name = indexPrefix.ReplaceAllString(base, "")
	}
	if b.Spec, err = readSpec(dir); err != nil {
		return Bundle{}, err
	}
	if b.Runtime, err = readRuntime(dir); err != nil {
		return Bundle{}, err
	}
	if fi, err := os.Stat(filepath.Join(dir, "lower")); err == nil && fi.IsDir() {
		b.Writable = true
	}
	return b, nil
}

func readSpec(dir string) (*specs.Spec, error) {
	data, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, fmt.Errorf("reading container spec: %w", err)
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("parsing %s: %w", filepath.Join(dir, "config.json"), err)
	}
	if s.Root == nil {
		s.Root = &specs.Root{Path: "rootfs"}
	}
	if !filepath.IsAbs(s.Root.Path) {
		s.Root.Path = filepath.Join(dir, s.Root.Path)
	}
	return &s, nil
}

func readRuntime(dir string) (Runtime, error) {
	var r Runtime
	data, err := os.ReadFile(filepath.Join(dir, "runtime.json"))
	if errors.Is(err, os.ErrNotExist) {
		return r, nil
	}
	if err != nil {
		return r, fmt.Errorf("reading container runtime config: %w", err)
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return r, fmt.Errorf("parsing %s: %w", filepath.Join(dir, "runtime.json"), err)
	}
	return r, nil
}
