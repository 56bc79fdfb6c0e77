package ocispec

import (
	"fmt"
	"slices"
	"strings"

	"github.com/bulkhead-dev/bulkhead/builder/config"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// capabilities builds the capability sets. The named capabilities are the
// effective set, the ambient ones the ambient set; the bounding, permitted
// and inheritable sets are both together, sorted. Nothing named means no
// capabilities at all.
func capabilities(s settings) (*specs.LinuxCapabilities, error) {
	named := pick(withAdded(s.label.Capabilities, s.spec.CapabilitiesAdd), s.spec.Capabilities)
	effective, err := capabilityList(named)
	if err != nil {
		return nil, err
	}
	ambient, err := capabilityList(pick(s.label.Ambient, s.spec.Ambient))
	if err != nil {
		return nil, err
	}
	bounding := slices.Concat(effective, ambient)
	slices.Sort(bounding)
	bounding = slices.Compact(bounding)
	return &specs.LinuxCapabilities{
		Bounding:    bounding,
		Effective:   effective,
		Inheritable: slices.Clone(bounding),
		Permitted:   slices.Clone(bounding),
		Ambient:     ambient,
	}, nil
}

// capabilityList expands a capabilities list: a single "all" is every
// capability (in number order), a single "none" is none; otherwise each
// entry must be a capability name as written in capabilities(7).
func capabilityList(names []string) ([]string, error) {
	if len(names) == 1 {
		switch strings.ToLower(names[0]) {
		case "none":
			return nil, nil
		case "all":
			return config.AllCapabilities(), nil
		}
	}
	known := config.AllCapabilities()
	var out []string
	for _, n := range names {
		if !slices.Contains(known, n) {
			return nil, fmt.Errorf("unknown capability %q", n)
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out, nil
}
