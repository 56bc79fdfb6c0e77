package kernelcheck

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bulkhead-dev/bulkhead/builder/config"
	"github.com/bulkhead-dev/bulkhead/internal/test/testkernel"

	"github.com/bulkhead-dev/bulkhead/internal/host/sysctl"
)

// debianFile returns a file from the boot/ directory of Debian's cloud
// kernel package (prefix "config-" or "vmlinuz-").
func debianFile(t *testing.T, prefix string) string {
	t.Helper()
	modules := testkernel.ModulesDir(t) // <pkg>/lib/modules/<release>
	release := filepath.Base(modules)
	return filepath.Join(modules, "..", "..", "..", "boot", prefix+release)
}

// TestDebianCloudConfigFails checks Debian's cloud kernel as a build would
// (its config, a plain command line, the init's sysctls): it fails and names
// each weak option.
func TestDebianCloudConfigFails(t *testing.T) {
	data, err := os.ReadFile(debianFile(t, "config-"))
	if err != nil {
		t.Fatal(err)
	}
	rep, v, err := CheckHost(data, "console=ttyS0 root=/dev/vda", sysctl.Hardening, &config.KernelPolicy{MinScore: 80, Require: []string{"container"}})
	if err != nil {
		t.Fatal(err)
	}
	var failed []string
	for _, f := range rep.Failures() {
		failed = append(failed, f.Rule)
	}
	for _, weak := range []string{"CONFIG_KEXEC", "CONFIG_HIBERNATION", "CONFIG_DEBUG_FS", "CONFIG_PROC_KCORE",
		"CONFIG_MODULE_SIG_FORCE", "CONFIG_IA32_EMULATION", "lockdown"} {
		if !slices.Contains(failed, weak) {
			t.Errorf("%s does not fail (failures: %v)", weak, failed)
		}
	}
	if v.Pass || rep.Score >= 80 || len(v.Reasons) != 1 || !strings.Contains(v.Reasons[0], "below the minimum 80%") {
		t.Errorf("score %d, verdict %+v", rep.Score, v)
	}
	// Debian's kernel does run containers.
	if c := category(t, rep, "container"); c.Score != 100 {
		t.Errorf("container category scores %d: %+v", c.Score, rep.Failures())
	}
	t.Logf("Debian cloud kernel: score %d%%, %d failures", rep.Score, len(failed))
}
