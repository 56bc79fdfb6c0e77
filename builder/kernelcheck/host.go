package kernelcheck

import (
	"fmt"

	"github.com/bulkhead-dev/bulkhead/builder/config"
	"github.com/bulkhead-dev/bulkhead/internal/host/sysctl"
)

// CheckHost checks a host's kernel as a build does, with the embedded
// rules: kernel is anything ReadConfig reads (usually the kernel image's
// kernel.config), cmdline is the spec's kernel command line, and sysctls
// are those the host's init applies (sysctl.Hardening for bulkhead's; nil
// when they are not known, which leaves the sysctl rules unchecked). The
// verdict judges the report against policy (nil requires nothing).
func CheckHost(kernel []byte, cmdline string, sysctls []sysctl.Setting, policy *config.KernelPolicy) (*Report, Verdict, error) {
	cfg, _, err := ReadConfig(kernel)
	if err != nil {
		return nil, Verdict{}, fmt.Errorf("checking kernel: %w", err)
	}
	k, err := ParseKconfig(cfg)
	if err != nil {
		return nil, Verdict{}, fmt.Errorf("checking kernel: %w", err)
	}
	return CheckKconfig(k, cmdline, sysctls, policy)
}

// CheckKconfig is CheckHost on a kernel config already parsed.
func CheckKconfig(k Kconfig, cmdline string, sysctls []sysctl.Setting, policy *config.KernelPolicy) (*Report, Verdict, error) {
	rules, err := DefaultRules()
	if err != nil {
		return nil, Verdict{}, err
	}
	rep := Check(rules, Input{Config: k, Cmdline: &cmdline, Sysctls: sysctls})
	return rep, rep.Evaluate(policy), nil
}
