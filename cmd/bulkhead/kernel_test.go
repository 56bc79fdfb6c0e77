package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/bulkhead-dev/bulkhead/builder/kernelcheck"
	"github.com/bulkhead-dev/bulkhead/internal/test/testkernel"
)

// hardenedConfig meets every kconfig rule; weakConfig then turns kexec on.
func hardenedConfig(t *testing.T) string {
	t.Helper()
	rules, err := kernelcheck.DefaultRules()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, c := range rules.Categories {
		for _, r := range c.Rules {
			switch {
			case r.Kind != kernelcheck.KindKconfig:
			case r.Expect[0] == kernelcheck.NotSet:
				fmt.Fprintf(&b, "# %s is not set\n", r.Name)
			default:
				fmt.Fprintf(&b, "%s=%s\n", r.Name, r.Expect[0])
			}
		}
	}
	return b.String()
}

const hardenedCmdline = "console=ttyS0 init_on_free=1 slab_nomerge page_alloc.shuffle=1 vsyscall=none debugfs=off lockdown=integrity module.sig_enforce=1 iommu.strict=1"

func kernelCheck(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var so, se bytes.Buffer
	code = run(context.Background(), append([]string{"kernel", "check"}, args...), &so, &se)
	return so.String(), se.String(), code
}

func TestKernelCheckConfigFile(t *testing.T) {
	good := writeSpec(t, "hardened.config", hardenedConfig(t))
	out, se, code := kernelCheck(t, good)
	if code != 0 {
		t.Fatalf("exit %d: %s%s", code, out, se)
	}
	for _, want := range []string{
		"attack-surface: Attack surface reduction (KSPP): 100%\n",
		"cmdline: Kernel command line (KSPP): not checked (8 rules; command line unknown)",
		"score 100% (passes: min 80%)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// Columns line up: KEXEC's and STRICT_DEVMEM's expected values start at
	// one offset in the attack-surface table.
	lines := strings.Split(out, "\n")
	kexec, devmem := lineWith(lines, "OK  CONFIG_KEXEC "), lineWith(lines, "OK  CONFIG_STRICT_DEVMEM ")
	if i, j := strings.Index(kexec, " is not set")+1, strings.Index(devmem, " y ")+1; i == 0 || i != j {
		t.Errorf("columns differ:\n%s\n%s", kexec, devmem)
	}

	weakCfg := strings.Replace(hardenedConfig(t), "# CONFIG_KEXEC is not set", "CONFIG_KEXEC=y", 1)
	weak := writeSpec(t, "weak.config", strings.Replace(weakCfg, "CONFIG_BPF_SYSCALL=y", "# CONFIG_BPF_SYSCALL is not set", 1))
	out, _, code = kernelCheck(t, "--cmdline", hardenedCmdline, "--require", "CONFIG_KEXEC", weak)
	if code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", code, out)
	}
	for _, want := range []string{"FAIL  CONFIG_KEXEC", "is not set  y           kexec_load",
		"\n  CONFIG_BPF_SYSCALL (KSPP vs container host): KSPP would drop bpf() altogether;", "cmdline: Kernel command line (KSPP): 100%", "  required CONFIG_KEXEC: expected is not set, got y\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if _, _, code := kernelCheck(t, "--min-score", "101", good); code != 2 {
		t.Errorf("--min-score 101: exit %d, want 2", code)
	}
	if _, _, code := kernelCheck(t); code != 2 {
		t.Errorf("no argument: exit %d, want 2", code)
	}
	if _, se, code := kernelCheck(t, filepath.Join(t.TempDir(), "missing.config")); code != 1 || !strings.Contains(se, "no such file") {
		t.Errorf("missing file: exit %d, %s", code, se)
	}
	if _, se, code := kernelCheck(t, writeSpec(t, "x.txt", "hello\n")); code != 1 || !strings.Contains(se, "not a kernel config") {
		t.Errorf("not a config: exit %d, %s", code, se)
	}
}

func TestKernelCheckDebianJSON(t *testing.T) {
	// The config file of Debian's cloud kernel, as its package ships it.
	modules := testkernel.ModulesDir(t) // <pkg>/lib/modules/<release>
	cfg := filepath.Join(modules, "..", "..", "..", "boot", "config-"+filepath.Base(modules))
	out, _, code := kernelCheck(t, "--json", cfg)
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	var doc struct {
		Source  string
		Verdict kernelcheck.Verdict
		Report  kernelcheck.Report
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	var failed []string
	for _, f := range doc.Report.Failures() {
		failed = append(failed, f.Rule)
	}
	if doc.Source != "config" || doc.Verdict.Pass || doc.Report.Score >= 80 {
		t.Errorf("source %s, verdict %+v, score %d", doc.Source, doc.Verdict, doc.Report.Score)
	}
	for _, weak := range []string{"CONFIG_KEXEC", "CONFIG_HIBERNATION", "CONFIG_DEBUG_FS", "CONFIG_PROC_KCORE", "CONFIG_MODULE_SIG_FORCE"} {
		if !strings.Contains(strings.Join(failed, " ")+" ", weak+" ") {
			t.Errorf("%s not among the failures %v", weak, failed)
		}
	}
	t.Logf("Debian cloud config alone: score %d%%", doc.Report.Score)
}

// TestKernelCheckSpec checks a spec: its kernel image from a registry, its
// command line, the init's sysctls and its policy.kernel.
func TestKernelCheckSpec(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	pushImage(t, host, "test/kernel:hardened", nil,
		tarFile{"kernel", "bzImage bytes", 0o644}, tarFile{"kernel.config", hardenedConfig(t), 0o644})
	spec := writeSpec(t, "host.yml", fmt.Sprintf(`kernel:
  image: %s/test/kernel:hardened
  cmdline: %s
policy:
  kernel:
    min_score: 100
    require: [container, lockdown]
`, host, hardenedCmdline))
	store := t.TempDir()
	out, se, code := kernelCheck(t, "--store", store, spec)
	if code != 0 || !strings.Contains(out, "userspace: Userspace hardening (KSPP sysctls the init applies): 100%") ||
		!strings.Contains(out, "score 100% (passes: min 100%)") || strings.Contains(out, "not checked (") {
		t.Fatalf("exit %d, stderr %s, output:\n%s", code, se, out)
	}
	// The spec's command line lacks lockdown, which its policy requires.
	data, _ := os.ReadFile(spec)
	os.WriteFile(spec, bytes.Replace(data, []byte(" lockdown=integrity"), nil, 1), 0o644)
	out, _, code = kernelCheck(t, "--store", store, "--offline", spec)
	if code != 1 || !strings.Contains(out, "score 98% (fails: min 100%)") ||
		!strings.Contains(out, "  required lockdown: expected integrity or confidentiality, got (absent)") {
		t.Fatalf("exit %d, output:\n%s", code, out)
	}

	// The image by reference, from a directory holding a file named like
	// the reference's first component (stat says ENOTDIR, not ENOENT).
	t.Chdir(t.TempDir())
	if err := os.WriteFile(host, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	out, se, code = kernelCheck(t, "--store", store, "--offline", host+"/test/kernel:hardened")
	if code != 0 || !strings.Contains(out, "passed") {
		t.Fatalf("by reference: exit %d, stderr %s, output:\n%s", code, se, out)
	}
}

func lineWith(lines []string, prefix string) string {
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}
