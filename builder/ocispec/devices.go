package ocispec

import (
	"fmt"
	"os"

	"github.com/bulkhead-dev/bulkhead/builder/config"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// buildDevices turns devices entries into device nodes and the device
// cgroup rules that let the container use them (read, write, mknod). An
// entry with path "all" adds no node, only a rule allowing every device of
// its type.
func buildDevices(devs []config.Device) ([]specs.LinuxDevice, []specs.LinuxDeviceCgroup, error) {
	var nodes []specs.LinuxDevice
	var rules []specs.LinuxDeviceCgroup
	for _, d := range devs {
		if d.Path == "all" {
			rules = append(rules, specs.LinuxDeviceCgroup{Allow: true, Type: d.Type, Access: "rwm"})
			continue
		}
		mode, err := config.ParseMode(d.Mode)
		if err != nil {
			return nil, nil, fmt.Errorf("device %s: %w", d.Path, err)
		}
		fm := os.FileMode(mode)
		nodes = append(nodes, specs.LinuxDevice{Path: d.Path, Type: d.Type, Major: d.Major, Minor: d.Minor, FileMode: &fm})
		major, minor := d.Major, d.Minor
		rules = append(rules, specs.LinuxDeviceCgroup{Allow: true, Type: d.Type, Major: &major, Minor: &minor, Access: "rwm"})
	}
	return nodes, rules, nil
}
