package kernelhardened_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/bulkhead-dev/bulkhead/builder/config"
	"github.com/bulkhead-dev/bulkhead/builder/kernelcheck"

	"github.com/bulkhead-dev/bulkhead/internal/host/sysctl"
)

// hardenedSpec chooses the hardened kernel, with a strict policy.kernel.
const hardenedSpec = "../../examples/hardened.yml"

func loadSpec(t *testing.T, name string) *config.Spec {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := config.Parse(name, data)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestBuiltKernelPassesCheck checks the built kernel as a build of
// examples/hardened.yml does, from its .config and from the config inside
// the bzImage (IKCONFIG): both pass the spec's policy.kernel and fail no
// rule (the /dev/mem filters are moot: there is no /dev/mem). Unlike builder/kernelcheck's test of the fragment, this sees
// what Kconfig turned on by itself.
func TestBuiltKernelPassesCheck(t *testing.T) {
	dir := builtKernel(t)
	spec := loadSpec(t, hardenedSpec)
	if spec.Policy == nil || spec.Policy.Kernel == nil {
		t.Fatalf("%s has no policy.kernel", hardenedSpec)
	}
	var want []string // STRICT_DEVMEM and IO_STRICT_DEVMEM are moot without /dev/mem
	var scores []int
	for _, name := range []string{"kernel.config", "kernel"} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		rep, v, err := kernelcheck.CheckHost(data, spec.Kernel.Cmdline, sysctl.Hardening, spec.Policy.Kernel)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !v.Pass {
			t.Errorf("%s fails %s's policy: %v", name, hardenedSpec, v.Reasons)
		}
		var failed []string
		for _, f := range rep.Failures() {
			failed = append(failed, f.Rule)
		}
		if !slices.Equal(failed, want) {
			t.Errorf("%s: failed rules %v, want exactly %v", name, failed, want)
		}
		scores = append(scores, rep.Score)
		t.Logf("%s: score %d%%, %d passed, %d failed", name, rep.Score, rep.Passed, rep.Failed)
	}
	if scores[0] != scores[1] {
		t.Errorf("the .config scores %d%%, the bzImage's config %d%%", scores[0], scores[1])
	}
}
