package kernelcheck

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/bulkhead-dev/bulkhead/builder/config"

	"github.com/bulkhead-dev/bulkhead/internal/host/sysctl"
)

// The kernels bulkhead offers, checked with the embedded rules: the
// hardened one (kernel/config, chosen by examples/hardened.yml) passes, and
// Debian's cloud kernel fails the same spec's policy.
//
// These tests check kernel/config's fragment, not the built .config: the
// build takes a quarter of an hour and unit tests build nothing. The
// fragment is applied on allnoconfig, so a symbol it does not mention is
// off, as the checker reads an absent symbol; and kernel/build fails when a
// line of the fragment does not survive, so every "=y" the check sees here
// is in the built kernel. What the fragment cannot show, a symbol Kconfig
// turns on by select or default, images/kernel-hardened's tests check on
// the built config and the bzImage.

const (
	fragmentFile = "../../kernel/config/bulkhead-x86_64.config"
	hardenedSpec = "../../examples/hardened.yml"
)

// hardenedKnownFailures are the rules the hardened config fails on purpose
// (kernel/README.md, "Choices and conflicts"): none. STRICT_DEVMEM and
// IO_STRICT_DEVMEM are moot, since DEVMEM=n removes the /dev/mem they
// filter (their rules say moot_without: CONFIG_DEVMEM).
var hardenedKnownFailures []string

func loadHardenedSpec(t *testing.T) *config.Spec {
	t.Helper()
	data, err := os.ReadFile(hardenedSpec)
	if err != nil {
		t.Fatal(err)
	}
	s, err := config.Parse(hardenedSpec, data)
	if err != nil {
		t.Fatal(err)
	}
	if s.Policy == nil || s.Policy.Kernel == nil {
		t.Fatalf("%s has no policy.kernel", hardenedSpec)
	}
	return s
}

func failedRules(rep *Report) []string {
	var out []string
	for _, f := range rep.Failures() {
		out = append(out, f.Rule)
	}
	return out
}

// TestHardenedConfigPasses checks the fragment as a build of
// examples/hardened.yml does: its command line, the init's sysctls and its
// policy.kernel; and with the default policy of `bulkhead kernel check`.
func TestHardenedConfigPasses(t *testing.T) {
	data, err := os.ReadFile(fragmentFile)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(strings.Split(string(data), "\n"), "# CONFIG_DEVMEM is not set") {
		t.Fatalf("%s keeps /dev/mem, yet its known failures assume it does not", fragmentFile)
	}
	spec := loadHardenedSpec(t)
	rep, v, err := CheckHost(data, spec.Kernel.Cmdline, sysctl.Hardening, spec.Policy.Kernel)
	if err != nil {
		t.Fatal(err)
	}
	if !v.Pass {
		t.Errorf("the hardened config fails %s's policy: %v", hardenedSpec, v.Reasons)
	}
	if got := failedRules(rep); !slices.Equal(got, hardenedKnownFailures) {
		t.Errorf("failed rules %v, want exactly %v", got, hardenedKnownFailures)
	}
	for _, c := range rep.Categories {
		if !c.Checked {
			t.Errorf("category %s not checked", c.Name)
		}
		if c.Score != 100 {
			t.Errorf("category %s scores %d%%, want 100%%", c.Name, c.Score)
		}
	}
	t.Logf("hardened kernel config: score %d%%, %d passed, %d failed", rep.Score, rep.Passed, rep.Failed)

	// `bulkhead kernel check` on the bare config: no command line, no
	// sysctls, the default policy.
	rules := defaultRules(t)
	k, err := ParseKconfig(data)
	if err != nil {
		t.Fatal(err)
	}
	bare := Check(rules, Input{Config: k})
	if v := bare.Evaluate(&config.KernelPolicy{MinScore: 80, Require: []string{"container"}}); !v.Pass {
		t.Errorf("the bare config fails the default policy: %v", v.Reasons)
	}
	if got := failedRules(bare); !slices.Equal(got, hardenedKnownFailures) {
		t.Errorf("bare config: failed rules %v, want exactly %v", got, hardenedKnownFailures)
	}
}

// TestDebianFailsHardenedPolicy checks Debian's cloud kernel under the
// hardened example's policy and command line: a spec that chooses Debian's
// kernel with that policy does not build, and the verdict names the
// required rules Debian's kernel breaks.
func TestDebianFailsHardenedPolicy(t *testing.T) {
	data, err := os.ReadFile(debianFile(t, "config-"))
	if err != nil {
		t.Fatal(err)
	}
	spec := loadHardenedSpec(t)
	rep, v, err := CheckHost(data, spec.Kernel.Cmdline, sysctl.Hardening, spec.Policy.Kernel)
	if err != nil {
		t.Fatal(err)
	}
	if v.Pass || !v.Enforce {
		t.Fatalf("verdict %+v, want an enforced failure", v)
	}
	reasons := map[string]bool{}
	for _, r := range v.Reasons {
		reasons[r] = true
	}
	for _, want := range []string{
		fmt.Sprintf("score %d%% is below the minimum 95%%", rep.Score),
		"required CONFIG_MODULE_SIG_FORCE: expected y, got is not set",
		"required CONFIG_MODULE_SIG_ALL: expected y, got (absent)",
		"required CONFIG_MODULE_SIG_SHA512: expected y, got is not set",
		"required CONFIG_IOMMU_DEFAULT_DMA_STRICT: expected y, got is not set",
	} {
		if !reasons[want] {
			t.Errorf("reasons lack %q: %q", want, v.Reasons)
		}
	}
	failed := failedRules(rep)
	for _, weak := range []string{"CONFIG_KEXEC", "CONFIG_KEXEC_FILE", "CONFIG_HIBERNATION", "CONFIG_DEBUG_FS",
		"CONFIG_PROC_KCORE", "CONFIG_IA32_EMULATION", "CONFIG_MODULE_SIG_FORCE"} {
		if !slices.Contains(failed, weak) {
			t.Errorf("%s does not fail (failures: %v)", weak, failed)
		}
	}
	t.Logf("Debian cloud kernel under %s: score %d%%, failed %v", hardenedSpec, rep.Score, failed)
}

// TestMootWithout: STRICT_DEVMEM passes when DEVMEM is off, and fails when
// /dev/mem exists unfiltered.
func TestMootWithout(t *testing.T) {
	rules := defaultRules(t)
	for _, tc := range []struct {
		config string
		ok     bool
	}{
		{"# CONFIG_DEVMEM is not set\n", true},
		{"CONFIG_DEVMEM=y\n", false},
		{"CONFIG_DEVMEM=y\nCONFIG_STRICT_DEVMEM=y\n", true},
	} {
		k, err := ParseKconfig([]byte(tc.config))
		if err != nil {
			t.Fatal(err)
		}
		rep := Check(rules, Input{Config: k})
		for _, c := range rep.Categories {
			for _, r := range c.Rows {
				if r.Rule == "CONFIG_STRICT_DEVMEM" && r.OK != tc.ok {
					t.Errorf("%q: STRICT_DEVMEM ok=%v (%s), want %v", tc.config, r.OK, r.Actual, tc.ok)
				}
			}
		}
	}
}
