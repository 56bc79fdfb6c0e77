// Package kernelcheck checks a kernel against bulkhead's kernel policy: the
// KSPP recommendations (self-protection, security policy, attack-surface
// reduction, command line, sysctls) and the options a container host needs,
// as data in kernel/rules. It reads the kernel's .config from a .config
// file, a bzImage built with CONFIG_IKCONFIG, or a bulkhead kernel image,
// and scores it against a spec's policy.kernel.
package kernelcheck

import (
	"fmt"
	"strings"

	"github.com/bulkhead-dev/bulkhead/builder/config"
	"github.com/bulkhead-dev/bulkhead/internal/host/sysctl"
)

// Absent is the actual value shown for a kconfig symbol, parameter or
// sysctl the kernel does not have.
const Absent = "(absent)"

// Input is what a check looks at. Cmdline and Sysctls are optional: a nil
// value leaves their categories unchecked.
type Input struct {
	// Config is the kernel's parsed .config.
	Config Kconfig
	// Cmdline is the kernel command line, or nil when unknown.
	Cmdline *string
	// Sysctls are the sysctls set at boot, or nil when unknown.
	Sysctls []sysctl.Setting
}

// Report is the outcome of a check.
type Report struct {
	Categories []CategoryResult `json:"categories"`
	// Score is the weighted share of checked rules that pass, in percent,
	// rounded down.
	Score int `json:"score"`
	// Passed and Failed count checked rules.
	Passed int `json:"passed"`
	Failed int `json:"failed"`
}

// CategoryResult is one category's rows.
type CategoryResult struct {
	Name  string `json:"name"`
	Title string `json:"title"`
	// Checked is false when the input had nothing to check the category
	// against (the command line or sysctls of a bare .config).
	Checked bool  `json:"checked"`
	Score   int   `json:"score"`
	Rows    []Row `json:"rows"`
}

// Row is one rule's outcome.
type Row struct {
	Rule     string `json:"rule"`
	Kind     string `json:"kind"`
	Expected string `json:"expected"`
	Actual   string `json:"actual"`
	OK       bool   `json:"ok"`
	Checked  bool   `json:"checked"`
	Weight   int    `json:"weight"`
	Reason   string `json:"reason"`
	Conflict string `json:"conflict,omitempty"`
}

// Check applies rules to in.
func Check(rules *Rules, in Input) *Report {
	values := map[string]map[string]string{KindKconfig: in.Config}
	if in.Cmdline != nil {
		values[KindCmdline] = parseCmdline(*in.Cmdline)
	}
	if in.Sysctls != nil {
		m := map[string]string{}
		for _, s := range in.Sysctls {
			m[s.Key] = s.Value
		}
		values[KindSysctl] = m
	}
	rep := &Report{}
	var passW, totalW int
	for _, c := range rules.Categories {
		cr := CategoryResult{Name: c.Name, Title: c.Title, Checked: true}
		var cPass, cTotal int
		for _, rule := range c.Rules {
			row := checkRule(rule, values)
			cr.Rows = append(cr.Rows, row)
			if !row.Checked {
				cr.Checked = false
				continue
			}
			cTotal += rule.Weight
			if row.OK {
				cPass += rule.Weight
				rep.Passed++
			} else {
				rep.Failed++
			}
		}
		cr.Score = percent(cPass, cTotal)
		passW, totalW = passW+cPass, totalW+cTotal
		rep.Categories = append(rep.Categories, cr)
	}
	rep.Score = percent(passW, totalW)
	return rep
}

func percent(n, total int) int {
	if total == 0 {
		return 100
	}
	return n * 100 / total
}

func checkRule(rule *Rule, values map[string]map[string]string) Row {
	row := Row{Rule: rule.Name, Kind: rule.Kind, Expected: rule.Expect.String(), Weight: rule.Weight,
		Reason: rule.Reason, Conflict: rule.Conflict}
	m, ok := values[rule.Kind]
	if !ok {
		row.Actual = "not checked"
		return row
	}
	row.Checked = true
	name := rule.Name
	if rule.Kind == KindCmdline {
		name = strings.ReplaceAll(name, "-", "_")
	}
	actual, present := m[name]
	if !present {
		actual = Absent
	}
	row.Actual = actual
	row.OK = matches(rule, actual, present)
	if !row.OK && rule.MootWithout != "" && rule.Kind == KindKconfig && notSet(values[KindKconfig], rule.MootWithout) {
		row.OK = true
		row.Actual = actual + " (moot: " + rule.MootWithout + " is not set)"
	}
	return row
}

// notSet reports whether the Kconfig option name is off in config.
func notSet(config map[string]string, name string) bool {
	v, ok := config[name]
	return !ok || v == NotSet || v == "n"
}

func matches(rule *Rule, actual string, present bool) bool {
	for _, want := range rule.Expect {
		switch {
		case want == NotSet && rule.Kind == KindKconfig:
			if !present || actual == NotSet || actual == "n" {
				return true
			}
		case present && actual == want:
			return true
		}
	}
	return false
}

// Verdict is a report judged against a policy.
type Verdict struct {
	Pass     bool `json:"pass"`
	MinScore int  `json:"min_score"`
	// Reasons say why the check failed, one line each.
	Reasons []string `json:"reasons,omitempty"`
	// Enforce is the policy's enforce flag: whether a failure should fail
	// the build.
	Enforce bool `json:"enforce"`
}

// Evaluate judges the report against policy: each required rule (a rule
// name, with or without CONFIG_, or a category name for all its rules)
// must pass, and the score must reach MinScore. A nil policy requires
// nothing. A required rule that was not checked fails.
func (r *Report) Evaluate(policy *config.KernelPolicy) Verdict {
	v := Verdict{Pass: true}
	if policy == nil {
		return v
	}
	v.MinScore, v.Enforce = policy.MinScore, policy.Enforce
	if r.Score < policy.MinScore {
		v.Reasons = append(v.Reasons, fmt.Sprintf("score %d%% is below the minimum %d%%", r.Score, policy.MinScore))
	}
	for _, req := range policy.Require {
		v.Reasons = append(v.Reasons, r.requirement(req)...)
	}
	v.Pass = len(v.Reasons) == 0
	return v
}

// requirement returns why req is not met, or nothing.
func (r *Report) requirement(req string) []string {
	var why []string
	found := false
	for _, c := range r.Categories {
		for _, row := range c.Rows {
			if c.Name != req && row.Rule != req && row.Rule != "CONFIG_"+req {
				continue
			}
			found = true
			switch {
			case !row.Checked:
				why = append(why, fmt.Sprintf("required %s was not checked", row.Rule))
			case !row.OK:
				why = append(why, fmt.Sprintf("required %s: expected %s, got %s", row.Rule, row.Expected, row.Actual))
			}
		}
	}
	if !found {
		return []string{fmt.Sprintf("required %q names no rule or category", req)}
	}
	return why
}

// Failures returns the checked rows that failed, in report order.
func (r *Report) Failures() []Row {
	var out []Row
	for _, c := range r.Categories {
		for _, row := range c.Rows {
			if row.Checked && !row.OK {
				out = append(out, row)
			}
		}
	}
	return out
}
