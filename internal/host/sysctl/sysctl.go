// Package sysctl sets kernel parameters through /proc/sys, starting with the
// hardening values KSPP recommends for a container host.
package sysctl

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Setting is one kernel parameter in dotted form ("kernel.kptr_restrict").
type Setting struct {
	Key   string
	Value string
}

// Hardening are the KSPP sysctls (as kernel-hardening-checker lists them).
// ptrace_scope is 2 (admin only) rather than 3, which cannot be undone and
// forbids even privileged debugging.
var Hardening = []Setting{
	{"kernel.kptr_restrict", "2"},
	{"kernel.dmesg_restrict", "1"},
	{"kernel.unprivileged_bpf_disabled", "1"},
	{"net.core.bpf_jit_harden", "2"},
	{"kernel.kexec_load_disabled", "1"},
	{"kernel.yama.ptrace_scope", "2"},
	{"kernel.perf_event_paranoid", "3"},
	{"vm.unprivileged_userfaultfd", "0"},
	{"fs.protected_symlinks", "1"},
	{"fs.protected_hardlinks", "1"},
	{"fs.protected_fifos", "2"},
	{"fs.protected_regular", "2"},
	{"fs.suid_dumpable", "0"},
}

// Path is the file under procSys ("/proc/sys") that holds key.
func Path(procSys, key string) string {
	return filepath.Join(procSys, strings.ReplaceAll(key, ".", "/"))
}

// Apply writes each setting under procSys and returns one error per setting
// that could not be set (a kernel without the parameter, for example); it
// does not stop at the first.
func Apply(procSys string, settings []Setting) []error {
	var errs []error
	for _, s := range settings {
		if err := write(Path(procSys, s.Key), s.Value); err != nil {
			errs = append(errs, fmt.Errorf("setting %s=%s: %w", s.Key, s.Value, err))
		}
	}
	return errs
}

// write sets an existing parameter file; it never creates one.
func write(path, value string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(value + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
