package config

import (
	"fmt"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// capabilityNames are the Linux capabilities as of Linux 6.1, in number order.
var capabilityNames = [...]string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
	"CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP",
	"CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
	"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
	"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
	"CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD",
	"CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
	"CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

// AllCapabilities returns every Linux capability name (CAP_*), in number
// order: what LinuxKit's special value "all" stands for.
func AllCapabilities() []string {
	return append([]string(nil), capabilityNames[:]...)
}

func isCapability(s string) bool {
	for _, c := range capabilityNames {
		if c == s {
			return true
		}
	}
	return false
}

// rlimitNames are the resource limits LinuxKit accepts.
var rlimitNames = [...]string{
	"RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_DATA", "RLIMIT_STACK", "RLIMIT_CORE",
	"RLIMIT_RSS", "RLIMIT_NPROC", "RLIMIT_NOFILE", "RLIMIT_MEMLOCK", "RLIMIT_AS",
	"RLIMIT_LOCKS", "RLIMIT_SIGPENDING", "RLIMIT_MSGQUEUE", "RLIMIT_NICE",
	"RLIMIT_RTPRIO", "RLIMIT_RTTIME",
}

// ParseRlimit reads an rlimits entry, "name,soft,hard", with LinuxKit's
// rules: the name is case-insensitive and its RLIMIT_ prefix optional
// ("nofile" is RLIMIT_NOFILE); soft and hard are numbers or "unlimited".
func ParseRlimit(s string) (specs.POSIXRlimit, error) {
	parts := strings.Split(s, ",")
	if len(parts) != 3 {
		return specs.POSIXRlimit{}, fmt.Errorf("rlimit %s: expected name,soft,hard", quote(s))
	}
	name := strings.ToUpper(strings.TrimSpace(parts[0]))
	if !strings.HasPrefix(name, "RLIMIT_") {
		name = "RLIMIT_" + name
	}
	if indexOf(rlimitNames[:], name) < 0 {
		short := make([]string, len(rlimitNames))
		for i, n := range rlimitNames {
			short[i] = strings.TrimPrefix(n, "RLIMIT_")
		}
		hint := ""
		if s := suggest(strings.TrimPrefix(name, "RLIMIT_"), short); s != "" {
			hint = " (did you mean " + quote("RLIMIT_"+s) + "?)"
		}
		return specs.POSIXRlimit{}, fmt.Errorf("unknown rlimit %s%s", quote(strings.TrimSpace(parts[0])), hint)
	}
	soft, err := rlimitValue(parts[1])
	if err != nil {
		return specs.POSIXRlimit{}, fmt.Errorf("rlimit %s: soft limit %w", quote(s), err)
	}
	hard, err := rlimitValue(parts[2])
	if err != nil {
		return specs.POSIXRlimit{}, fmt.Errorf("rlimit %s: hard limit %w", quote(s), err)
	}
	if soft > hard {
		return specs.POSIXRlimit{}, fmt.Errorf("rlimit %s: soft limit exceeds hard limit", quote(s))
	}
	return specs.POSIXRlimit{Type: name, Soft: soft, Hard: hard}, nil
}

func rlimitValue(s string) (uint64, error) {
	s = strings.TrimSpace(s)
	if strings.EqualFold(s, "unlimited") {
		return ^uint64(0), nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s is not a number or \"unlimited\"", quote(s))
	}
	return v, nil
}

// Bind is a parsed binds entry.
type Bind struct {
	// Source is an absolute host path, or the name of a volume.
	Source      string
	Destination string
	// Options are the options written after the second colon, if any.
	Options []string
}

// Volume reports whether the bind's source names a volume rather than a
// host path.
func (b Bind) Volume() bool { return !strings.HasPrefix(b.Source, "/") }

// ParseBind reads a binds entry, "src:dst[:opt,opt...]". dst must be
// absolute; a src without a leading "/" names a volume.
func ParseBind(s string) (Bind, error) {
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return Bind{}, fmt.Errorf("bind %s: expected src:dst[:options]", quote(s))
	}
	b := Bind{Source: parts[0], Destination: parts[1]}
	if b.Source == "" {
		return Bind{}, fmt.Errorf("bind %s: empty source", quote(s))
	}
	if !strings.HasPrefix(b.Destination, "/") {
		return Bind{}, fmt.Errorf("bind %s: destination %s is not an absolute path", quote(s), quote(b.Destination))
	}
	if len(parts) == 3 {
		b.Options = strings.Split(parts[2], ",")
		for _, o := range b.Options {
			if o == "" {
				return Bind{}, fmt.Errorf("bind %s: empty option", quote(s))
			}
		}
	}
	return b, nil
}
