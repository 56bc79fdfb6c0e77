package kernelcheck

import (
	"bytes"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/bulkhead-dev/bulkhead/kernel"
)

// Kinds of rule: what a rule's name refers to.
const (
	KindKconfig = "kconfig" // a Kconfig symbol in the kernel's .config
	KindCmdline = "cmdline" // a kernel command-line parameter
	KindSysctl  = "sysctl"  // a sysctl the init sets at boot
)

// Special expectations.
const (
	NotSet = "is not set" // a kconfig symbol that is off or absent
	Flag   = "set"        // a command-line parameter present without a value
)

// Rule is one expectation about the kernel.
type Rule struct {
	Name string `json:"name" yaml:"name"`
	Kind string `json:"kind" yaml:"kind"`
	// Expect lists the accepted values; any one passes.
	Expect   Expect `json:"expect" yaml:"expect"`
	Reason   string `json:"reason" yaml:"reason"`
	Conflict string `json:"conflict,omitempty" yaml:"conflict"`
	Weight   int    `json:"weight" yaml:"weight"`
	// MootWithout names a Kconfig option without which the rule has
	// nothing to protect: when that option is not set, the rule passes
	// (CONFIG_STRICT_DEVMEM filters /dev/mem, which CONFIG_DEVMEM=n
	// removes).
	MootWithout string `json:"moot_without,omitempty" yaml:"moot_without"`
}

// Expect is one value or a list of accepted values.
type Expect []string

// UnmarshalYAML accepts a scalar or a sequence of scalars.
func (e *Expect) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		*e = Expect{n.Value}
		return nil
	case yaml.SequenceNode:
		var v []string
		if err := n.Decode(&v); err != nil {
			return err
		}
		*e = v
		return nil
	}
	return fmt.Errorf("line %d: expect: want a value or a list of values", n.Line)
}

// String is the expectation as the report shows it: "y or m".
func (e Expect) String() string { return strings.Join(e, " or ") }

// Category is one rules file: a group of rules reported together.
type Category struct {
	Name  string  `json:"name" yaml:"category"`
	Title string  `json:"title" yaml:"title"`
	Kind  string  `json:"kind" yaml:"kind"`
	Rules []*Rule `json:"rules" yaml:"rules"`
}

// Rules is a complete rule set, its categories in a fixed order.
type Rules struct {
	Categories []*Category
}

// categoryOrder is the order of the report; unknown categories follow,
// sorted by name.
var categoryOrder = []string{"self-protection", "security-policy", "attack-surface", "userspace", "cmdline", "container"}

// DefaultRules returns the rules embedded from kernel/rules.
func DefaultRules() (*Rules, error) { return LoadRules(kernel.Rules()) }

// LoadRules reads every *.yml file at the top of fsys as one category.
func LoadRules(fsys fs.FS) (*Rules, error) {
	names, err := fs.Glob(fsys, "*.yml")
	if err != nil {
		return nil, fmt.Errorf("loading kernel rules: %w", err)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("loading kernel rules: no *.yml files")
	}
	r := &Rules{}
	seen := map[string]string{}
	for _, name := range names {
		c, err := loadCategory(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("loading kernel rules: %w", err)
		}
		for _, rule := range c.Rules {
			if prev, ok := seen[rule.Name]; ok {
				return nil, fmt.Errorf("loading kernel rules: %s: rule %s is also in %s: resolve the conflict in one place", name, rule.Name, prev)
			}
			seen[rule.Name] = name
		}
		r.Categories = append(r.Categories, c)
	}
	slices.SortStableFunc(r.Categories, func(a, b *Category) int {
		ia, ib := orderOf(a.Name), orderOf(b.Name)
		if ia != ib {
			return ia - ib
		}
		return strings.Compare(a.Name, b.Name)
	})
	return r, nil
}

func orderOf(name string) int {
	if i := slices.Index(categoryOrder, name); i >= 0 {
		return i
	}
	return len(categoryOrder)
}

func loadCategory(fsys fs.FS, name string) (*Category, error) {
	data, err := fs.ReadFile(fsys, name)
	if err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var c Category
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if want := strings.TrimSuffix(path.Base(name), ".yml"); c.Name != want {
		return nil, fmt.Errorf("%s: category %q must match the file name %q", name, c.Name, want)
	}
	for i, rule := range c.Rules {
		if err := c.fill(rule); err != nil {
			return nil, fmt.Errorf("%s: rule %d (%s): %w", name, i+1, rule.Name, err)
		}
	}
	return &c, nil
}

// fill applies the category's defaults to rule and checks it.
func (c *Category) fill(rule *Rule) error {
	if rule.Kind == "" {
		rule.Kind = c.Kind
	}
	if rule.Weight == 0 {
		rule.Weight = 1
	}
	switch {
	case rule.Name == "":
		return fmt.Errorf("no name")
	case rule.Kind != KindKconfig && rule.Kind != KindCmdline && rule.Kind != KindSysctl:
		return fmt.Errorf("unknown kind %q (known: kconfig, cmdline, sysctl)", rule.Kind)
	case rule.Kind == KindKconfig && !strings.HasPrefix(rule.Name, "CONFIG_"):
		return fmt.Errorf("kconfig rule names start with CONFIG_")
	case len(rule.Expect) == 0:
		return fmt.Errorf("no expect")
	case rule.Reason == "":
		return fmt.Errorf("no reason")
	case rule.Weight < 0:
		return fmt.Errorf("negative weight")
	}
	return nil
}

// Find returns the rule named name (CONFIG_ may be left out), or nil.
func (r *Rules) Find(name string) *Rule {
	for _, c := range r.Categories {
		for _, rule := range c.Rules {
			if rule.Name == name || rule.Name == "CONFIG_"+name {
				return rule
			}
		}
	}
	return nil
}

// Category returns the category named name, or nil.
func (r *Rules) Category(name string) *Category {
	for _, c := range r.Categories {
		if c.Name == name {
			return c
		}
	}
	return nil
}
