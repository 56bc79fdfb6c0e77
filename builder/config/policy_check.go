package config

import (
	"io/fs"
	"slices"
	"strings"
	"sync"

	"github.com/bulkhead-dev/bulkhead/kernel"
	"gopkg.in/yaml.v3"
)

// FailOnLevels are policy.vulnerabilities.fail_on's values, lowest first.
var FailOnLevels = []string{"low", "medium", "high", "critical"}

// ForbidClasses are policy.forbid's values (singular forms are accepted
// too).
var ForbidClasses = []string{"shells", "package-managers", "compilers", "setuid", "setgid",
	"world-writable", "vestigial", "devices", "capabilities", "outside-files"}

// checkPolicyValues reports policy values the gates would refuse at build
// time, or silently never meet: a score outside 0..100, a required kernel
// rule or category that does not exist, an unknown fail_on level or forbid
// class.
func (d *decoder) checkPolicyValues(v *Policy, set map[string]*yaml.Node) {
	if k := resolve(set["kernel"]); v.Kernel != nil && k != nil && k.Kind == yaml.MappingNode {
		kf := fieldNodes(d, k)
		if n := kf["min_score"]; n != nil && (v.Kernel.MinScore < 0 || v.Kernel.MinScore > 100) {
			d.errorf(n, "kernel.min_score: a percentage from 0 to 100, got %d", v.Kernel.MinScore)
		}
		d.eachString(kf["require"], func(n *yaml.Node) {
			if names := kernelRuleNames(); !slices.Contains(names, n.Value) && !slices.Contains(names, "CONFIG_"+n.Value) {
				d.errorf(n, "kernel.require: no kernel rule or category %s%s", quote(n.Value), didYouMean(n.Value, names))
			}
		})
	}
	if vn := resolve(set["vulnerabilities"]); v.Vulnerabilities != nil && vn != nil && vn.Kind == yaml.MappingNode {
		if n := fieldNodes(d, vn)["fail_on"]; n != nil && !slices.Contains(FailOnLevels, v.Vulnerabilities.FailOn) {
			d.errorf(n, "vulnerabilities.fail_on: expected one of %s, got %s%s", strings.Join(FailOnLevels, ", "), quote(v.Vulnerabilities.FailOn), didYouMean(v.Vulnerabilities.FailOn, FailOnLevels))
		}
	}
	d.eachString(set["forbid"], func(n *yaml.Node) {
		w := n.Value
		if !slices.Contains(ForbidClasses, w) && !slices.Contains(ForbidClasses, w+"s") {
			d.errorf(n, "forbid: unknown class %s%s (known: %s)", quote(w), didYouMean(w, ForbidClasses), strings.Join(ForbidClasses, ", "))
		}
	})
}

// fieldNodes maps each key of a mapping to its value node.
func fieldNodes(d *decoder, n *yaml.Node) map[string]*yaml.Node {
	out := map[string]*yaml.Node{}
	if n == nil || n.Kind != yaml.MappingNode {
		return out
	}
	for _, p := range d.pairs(n, 0) {
		out[resolve(p.key).Value] = p.value
	}
	return out
}

// kernelRuleNames are the names of bulkhead's kernel rules and their
// categories (kernel/rules), read once.
var kernelRuleNames = sync.OnceValue(func() []string {
	var names []string
	files, _ := fs.Glob(kernel.Rules(), "*.yml")
	for _, f := range files {
		data, err := fs.ReadFile(kernel.Rules(), f)
		if err != nil {
			continue
		}
		var c struct {
			Category string
			Rules    []struct{ Name string }
		}
		if yaml.Unmarshal(data, &c) != nil {
			continue
		}
		names = append(names, c.Category)
		for _, r := range c.Rules {
			names = append(names, r.Name)
		}
	}
	return names
})
