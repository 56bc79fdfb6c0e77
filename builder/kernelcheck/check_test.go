package kernelcheck

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/bulkhead-dev/bulkhead/builder/config"
	"github.com/bulkhead-dev/bulkhead/internal/host/sysctl"
)

func defaultRules(t *testing.T) *Rules {
	t.Helper()
	r, err := DefaultRules()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// passingConfig writes a .config that meets every kconfig rule, with each
// rule's first accepted value, and some unrelated lines a real one has.
func passingConfig(r *Rules) string {
	var b strings.Builder
	b.WriteString("#\n# Automatically generated file; DO NOT EDIT.\n#\nCONFIG_CC_VERSION_TEXT=\"gcc (Debian 12.2.0-14) 12.2.0\"\nCONFIG_LOCALVERSION=\"\"\n")
	for _, c := range r.Categories {
		for _, rule := range c.Rules {
			if rule.Kind != KindKconfig {
				continue
			}
			if rule.Expect[0] == NotSet {
				fmt.Fprintf(&b, "# %s is not set\n", rule.Name)
			} else {
				fmt.Fprintf(&b, "%s=%s\n", rule.Name, rule.Expect[0])
			}
		}
	}
	return b.String()
}

// passingCmdline meets every cmdline rule.
func passingCmdline(r *Rules) string {
	words := []string{"console=ttyS0"}
	for _, c := range r.Categories {
		for _, rule := range c.Rules {
			switch {
			case rule.Kind != KindCmdline:
			case rule.Expect[0] == Flag:
				words = append(words, rule.Name)
			default:
				words = append(words, rule.Name+"="+rule.Expect[0])
			}
		}
	}
	return strings.Join(words, " ")
}

func parse(t *testing.T, s string) Kconfig {
	t.Helper()
	k, err := ParseKconfig([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestPassingHostPasses(t *testing.T) {
	r := defaultRules(t)
	cmdline := passingCmdline(r)
	rep, v, err := CheckHost([]byte(passingConfig(r)), cmdline, sysctl.Hardening, &config.KernelPolicy{MinScore: 100, Require: []string{"container", "CONFIG_KEXEC", "MODULE_SIG_FORCE", "lockdown"}})
	if err != nil {
		t.Fatal(err)
	}
	if !v.Pass || rep.Score != 100 || rep.Failed != 0 {
		t.Fatalf("score %d, failed %d, verdict %+v: %v", rep.Score, rep.Failed, v, rep.Failures())
	}
	for _, c := range rep.Categories {
		if !c.Checked || c.Score != 100 {
			t.Errorf("category %s: checked %v, score %d", c.Name, c.Checked, c.Score)
		}
	}
}

// TestInitSysctlsMeetRules keeps the init's sysctl list and the userspace
// rules in step: every rule is one the init applies with a passing value.
func TestInitSysctlsMeetRules(t *testing.T) {
	r := defaultRules(t)
	rep := Check(r, Input{Config: Kconfig{}, Sysctls: sysctl.Hardening})
	c := category(t, rep, "userspace")
	if !c.Checked || c.Score != 100 {
		t.Fatalf("userspace: checked %v, score %d, rows %+v", c.Checked, c.Score, c.Rows)
	}
}

func category(t *testing.T, rep *Report, name string) CategoryResult {
	t.Helper()
	for _, c := range rep.Categories {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no category %s", name)
	return CategoryResult{}
}

// TestEachCategoryFails breaks one rule of each category in an otherwise
// passing host and expects exactly that rule to fail.
func TestEachCategoryFails(t *testing.T) {
	r := defaultRules(t)
	cases := []struct {
		category, rule  string
		config, cmdline string // replacements: old→new in the config or the command line
		sysctl          sysctl.Setting
		actual          string
	}{
		{category: "self-protection", rule: "CONFIG_STRICT_KERNEL_RWX", config: "CONFIG_STRICT_KERNEL_RWX=y→# CONFIG_STRICT_KERNEL_RWX is not set", actual: NotSet},
		{category: "security-policy", rule: "CONFIG_SECURITY_LANDLOCK", config: "CONFIG_SECURITY_LANDLOCK=y\n→", actual: Absent},
		{category: "attack-surface", rule: "CONFIG_KEXEC", config: "# CONFIG_KEXEC is not set→CONFIG_KEXEC=y", actual: "y"},
		{category: "userspace", rule: "kernel.kptr_restrict", sysctl: sysctl.Setting{Key: "kernel.kptr_restrict", Value: "1"}, actual: "1"},
		{category: "cmdline", rule: "lockdown", cmdline: "lockdown=integrity→lockdown=none", actual: "none"},
		{category: "container", rule: "CONFIG_OVERLAY_FS", config: "CONFIG_OVERLAY_FS=y→# CONFIG_OVERLAY_FS is not set", actual: NotSet},
	}
	for _, tc := range cases {
		t.Run(tc.category, func(t *testing.T) {
			cfg, cmdline := passingConfig(r), passingCmdline(r)
			cfg = replace(t, cfg, tc.config)
			cmdline = replace(t, cmdline, tc.cmdline)
			sysctls := slices.Clone(sysctl.Hardening)
			for i := range sysctls {
				if sysctls[i].Key == tc.sysctl.Key {
					sysctls[i] = tc.sysctl
				}
			}
			rep := Check(r, Input{Config: parse(t, cfg), Cmdline: &cmdline, Sysctls: sysctls})
			fails := rep.Failures()
			if len(fails) != 1 || fails[0].Rule != tc.rule || fails[0].Actual != tc.actual {
				t.Fatalf("failures %+v, want only %s with actual %q", fails, tc.rule, tc.actual)
			}
			for _, c := range rep.Categories {
				if broken := c.Name == tc.category; broken != (c.Score < 100) {
					t.Errorf("category %s scores %d", c.Name, c.Score)
				}
			}
			if rep.Score >= 100 || rep.Score < 90 {
				t.Errorf("score %d, want in [90, 100)", rep.Score)
			}
			v := rep.Evaluate(&config.KernelPolicy{Require: []string{tc.category}})
			if v.Pass || len(v.Reasons) != 1 || !strings.Contains(v.Reasons[0], tc.rule) {
				t.Errorf("requiring %s: verdict %+v", tc.category, v)
			}
			if v := rep.Evaluate(&config.KernelPolicy{MinScore: 90}); !v.Pass {
				t.Errorf("min score 90: verdict %+v", v)
			}
		})
	}
}

func replace(t *testing.T, s, edit string) string {
	t.Helper()
	if edit == "" {
		return s
	}
	old, new, _ := strings.Cut(edit, "→")
	if !strings.Contains(s, old) {
		t.Fatalf("%q not in input", old)
	}
	return strings.Replace(s, old, new, 1)
}

// TestConflictKSPPOnly checks the conflict resolution: a kernel that follows
// KSPP to the letter (no bpf(), no user namespaces) is not a container
// host, and the failing rows explain why the rules keep them.
func TestConflictKSPPOnly(t *testing.T) {
	r := defaultRules(t)
	cfg := passingConfig(r)
	cfg = replace(t, cfg, "CONFIG_BPF_SYSCALL=y→# CONFIG_BPF_SYSCALL is not set")
	cfg = replace(t, cfg, "CONFIG_USER_NS=y→# CONFIG_USER_NS is not set")
	rep := Check(r, Input{Config: parse(t, cfg)})
	var names []string
	for _, f := range rep.Failures() {
		names = append(names, f.Rule)
		if !strings.Contains(f.Conflict, "KSPP") {
			t.Errorf("%s fails without explaining the conflict: %q", f.Rule, f.Conflict)
		}
	}
	if !slices.Equal(names, []string{"CONFIG_USER_NS", "CONFIG_BPF_SYSCALL"}) {
		t.Fatalf("failures %v", names)
	}
	if c := category(t, rep, "attack-surface"); c.Score != 100 {
		t.Errorf("attack-surface scores %d", c.Score)
	}
	v := rep.Evaluate(&config.KernelPolicy{Require: []string{"container"}})
	if v.Pass || len(v.Reasons) != 2 || !strings.Contains(v.Reasons[1], "CONFIG_BPF_SYSCALL: expected y, got is not set") {
		t.Errorf("verdict %+v", v)
	}
	// The compensating options for keeping bpf() are rules of their own.
	for _, name := range []string{"CONFIG_BPF_UNPRIV_DEFAULT_OFF", "kernel.unprivileged_bpf_disabled", "net.core.bpf_jit_harden"} {
		if r.Find(name) == nil {
			t.Errorf("no rule %s", name)
		}
	}
}

func TestBareConfigLeavesCmdlineAndSysctlsUnchecked(t *testing.T) {
	r := defaultRules(t)
	rep := Check(r, Input{Config: parse(t, passingConfig(r))})
	for _, c := range rep.Categories {
		want := c.Name != "cmdline" && c.Name != "userspace"
		if c.Checked != want {
			t.Errorf("category %s checked = %v", c.Name, c.Checked)
		}
		for _, row := range c.Rows {
			if row.Checked != want || (!want && row.Actual != "not checked") {
				t.Errorf("row %+v", row)
			}
		}
	}
	if rep.Score != 100 || rep.Failed != 0 {
		t.Errorf("score %d, failed %d", rep.Score, rep.Failed)
	}
	v := rep.Evaluate(&config.KernelPolicy{Require: []string{"lockdown", "NO_SUCH"}})
	want := []string{"required lockdown was not checked", `required "NO_SUCH" names no rule or category`}
	if v.Pass || !slices.Equal(v.Reasons, want) {
		t.Errorf("reasons %q, want %q", v.Reasons, want)
	}
}

func TestScoreIsWeighted(t *testing.T) {
	fsys := fstest.MapFS{"a.yml": {Data: []byte(`category: a
title: A
kind: kconfig
rules:
  - {name: CONFIG_A, expect: y, reason: a, weight: 3}
  - {name: CONFIG_B, expect: [y, m], reason: b}
  - {name: CONFIG_C, expect: is not set, reason: c}
  - {name: CONFIG_D, expect: "64", reason: d}
`)}}
	r, err := LoadRules(fsys)
	if err != nil {
		t.Fatal(err)
	}
	rep := Check(r, Input{Config: Kconfig{"CONFIG_A": "y", "CONFIG_B": "m", "CONFIG_C": "y", "CONFIG_D": "32"}})
	if rep.Score != 66 || rep.Passed != 2 || rep.Failed != 2 { // (3+1)/6, rounded down
		t.Fatalf("score %d passed %d failed %d", rep.Score, rep.Passed, rep.Failed)
	}
	if got := rep.Categories[0].Rows[1].Expected; got != "y or m" {
		t.Errorf("expected shown as %q", got)
	}
	rep = Check(r, Input{Config: Kconfig{"CONFIG_A": "y", "CONFIG_B": "y", "CONFIG_D": "64"}})
	if rep.Score != 100 {
		t.Fatalf("absent CONFIG_C: score %d, %+v", rep.Score, rep.Failures())
	}
}

func TestLoadRulesRejects(t *testing.T) {
	good := "category: a\ntitle: A\nkind: kconfig\nrules:\n  - {name: CONFIG_A, expect: y, reason: r}\n"
	cases := map[string]fstest.MapFS{
		"also in a.yml":            {"a.yml": {Data: []byte(good)}, "b.yml": {Data: []byte(strings.ReplaceAll(good, "category: a", "category: b"))}},
		"must match the file name": {"x.yml": {Data: []byte(good)}},
		"unknown kind":             {"a.yml": {Data: []byte(strings.Replace(good, "kconfig", "sysfs", 1))}},
		"no reason":                {"a.yml": {Data: []byte(strings.Replace(good, ", reason: r", "", 1))}},
		"field bogus not found":    {"a.yml": {Data: []byte(good + "bogus: 1\n")}},
		"start with CONFIG_":       {"a.yml": {Data: []byte(strings.Replace(good, "CONFIG_A", "A", 1))}},
	}
	for want, fsys := range cases {
		if _, err := LoadRules(fsys); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want error containing %q, got %v", want, err)
		}
	}
}

func TestDefaultRulesShape(t *testing.T) {
	r := defaultRules(t)
	var got []string
	for _, c := range r.Categories {
		got = append(got, c.Name)
		if len(c.Rules) < 4 {
			t.Errorf("category %s has %d rules", c.Name, len(c.Rules))
		}
	}
	want := []string{"self-protection", "security-policy", "attack-surface", "userspace", "cmdline", "container"}
	if !slices.Equal(got, want) {
		t.Fatalf("categories %v, want %v", got, want)
	}
	if len(r.Find("CONFIG_BPF_SYSCALL").Conflict) == 0 || len(r.Find("USER_NS").Conflict) == 0 {
		t.Error("the BPF and user-namespace conflicts are not explained")
	}
}

func TestParseKconfig(t *testing.T) {
	k := parse(t, "# comment\nCONFIG_A=y\nCONFIG_B=m\n# CONFIG_C is not set\nCONFIG_S=\"a \\\"b\\\"\"\nCONFIG_N=0x10\n#CONFIG_X is not set because\n")
	want := Kconfig{"CONFIG_A": "y", "CONFIG_B": "m", "CONFIG_C": NotSet, "CONFIG_S": `a "b"`, "CONFIG_N": "0x10"}
	if fmt.Sprint(k) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", k, want)
	}
	if _, err := ParseKconfig([]byte("hello\n")); err == nil {
		t.Error("a file without CONFIG_ lines parsed")
	}
}

func TestParseCmdline(t *testing.T) {
	got := parseCmdline(`console=ttyS0 slab_nomerge lockdown=none page-alloc.shuffle=1 lockdown=integrity x="a b" -- init=1 debugfs=off`)
	want := map[string]string{"console": "ttyS0", "slab_nomerge": Flag, "lockdown": "integrity", "page_alloc.shuffle": "1", "x": "a b"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}
