package ocispec

import (
	"maps"
	"slices"

	"github.com/bulkhead-dev/bulkhead/builder/config"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// settings holds the two sources of a container's settings. A field set in
// the spec entry wins over the same field in the image label; only the
// `.add` fields of the spec merge with the label.
type settings struct {
	spec  *config.ImageConfig
	label *config.ImageConfig // empty when the image has no label
}

// pick returns the spec's value, else the label's, else the zero value.
func pick[T any](label, spec *T) T {
	if p := pickPtr(label, spec); p != nil {
		return *p
	}
	var zero T
	return zero
}

// pickPtr is pick for optional values: nil when neither sets it.
func pickPtr[T any](label, spec *T) *T {
	if spec != nil {
		return spec
	}
	return label
}

// firstNonEmpty returns the first non-empty string.
func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// withAdded is base followed by the entries of add not already present.
// LinuxKit does not de-duplicate here; duplicates only ever produced a
// repeated capability or an identical mount, so dropping them is harmless.
func withAdded(base, add *[]string) *[]string {
	if add == nil {
		return base
	}
	var out []string
	if base != nil {
		out = slices.Clone(*base)
	}
	for _, a := range *add {
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return &out
}

func (s settings) readonly() bool {
	return pick(s.label.Readonly, s.spec.Readonly)
}

// command is the spec's command, else the label's, else the image's
// entrypoint followed by its cmd.
func (s settings) command(img v1.Config) []string {
	if c := pickPtr(s.label.Command, s.spec.Command); c != nil {
		return slices.Clone(*c)
	}
	return append(slices.Clone(img.Entrypoint), img.Cmd...)
}

// env is the spec's env, else the label's, else the image's, whole: the
// lists are never merged (and, as in LinuxKit, no PATH is added).
func (s settings) env(img v1.Config) []string {
	if e := pickPtr(s.label.Env, s.spec.Env); e != nil {
		return slices.Clone(*e)
	}
	return slices.Clone(img.Env)
}

// copyResources returns a copy of r that the device rules can be appended
// to without touching the caller's value.
func copyResources(r *specs.LinuxResources) *specs.LinuxResources {
	if r == nil {
		return &specs.LinuxResources{}
	}
	c := *r
	c.Devices = slices.Clone(r.Devices)
	return &c
}

func copyMap(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return maps.Clone(m)
}
