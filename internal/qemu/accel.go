package qemu

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Accelerators for Config.Accel.
const (
	AccelAuto = "auto" // KVM when the probe proves it runs a guest, else TCG
	AccelKVM  = "kvm"  // KVM or an error saying why it cannot run a guest
	AccelTCG  = "tcg"  // software emulation
)

// EnvAccel names the accelerator a zero Config.Accel uses (auto, kvm or
// tcg); unset means auto. Tests and scripts set it to force one.
const EnvAccel = "BULKHEAD_ACCEL"

// ProbeTimeout bounds the KVM probe: a guest that has not reached long mode
// by then counts as hung. A working KVM needs a few milliseconds after
// qemu has started.
const ProbeTimeout = 4 * time.Second

// ErrKVMUnusable is wrapped by the error of a forced kvm that cannot run a
// guest.
var ErrKVMUnusable = errors.New("kvm cannot run a guest here")

// Accel is the accelerator a VM runs with, and why.
type Accel struct {
	Name string // "kvm" or "tcg"
	Why  string // for tcg chosen by auto: why KVM was not used; else ""
}

// ResolveAccel turns want (auto, kvm, tcg, or "" for $BULKHEAD_ACCEL, else
// auto) into the accelerator to use with binary. auto and kvm run the KVM
// probe once per process and binary. A forced kvm that fails is an error
// wrapping ErrKVMUnusable and saying what qemu said.
func ResolveAccel(ctx context.Context, binary, want string) (Accel, error) {
	if want == "" {
		want = os.Getenv(EnvAccel)
	}
	switch want {
	case "", AccelAuto:
		if why := probeKVM(ctx, binary); why != "" {
			return Accel{Name: AccelTCG, Why: "KVM cannot run a guest here (" + why + ")"}, nil
		}
		return Accel{Name: AccelKVM}, nil
	case AccelKVM:
		if why := probeKVM(ctx, binary); why != "" {
			return Accel{}, fmt.Errorf("%w: %s; use --accel tcg (or %s=tcg)", ErrKVMUnusable, why, EnvAccel)
		}
		return Accel{Name: AccelKVM}, nil
	case AccelTCG:
		return Accel{Name: AccelTCG}, nil
	}
	return Accel{}, fmt.Errorf("accelerator %q: want auto, kvm or tcg", want)
}

var probes struct {
	sync.Mutex
	why map[string]string // by qemu binary: "" when KVM runs a guest
}

// probeKVM returns "" when KVM runs a guest with binary, else why not. The
// answer is cached per binary for the life of the process; a cancelled ctx
// is not cached.
func probeKVM(ctx context.Context, binary string) string {
	probes.Lock()
	defer probes.Unlock()
	if why, ok := probes.why[binary]; ok {
		return why
	}
	why := runProbe(ctx, binary, kvmDevice)
	if ctx.Err() == nil {
		if probes.why == nil {
			probes.why = map[string]string{}
		}
		probes.why[binary] = why
	}
	return why
}

// kvmDevice is the device a KVM guest needs.
const kvmDevice = "/dev/kvm"

// runProbe boots the probe guest under KVM and waits for it to print that
// it reached long mode. It returns "" when it did, else why not.
func runProbe(ctx context.Context, binary, device string) string {
	f, err := os.OpenFile(device, os.O_RDWR, 0)
	if err != nil {
		return err.Error()
	}
	f.Close()
	dir, err := os.MkdirTemp("", "bulkhead-kvm-probe-")
	if err != nil {
		return "probe: " + err.Error()
	}
	defer os.RemoveAll(dir)
	bios := filepath.Join(dir, "probe.bin")
	if err := os.WriteFile(bios, probeImage(), 0o600); err != nil {
		return "probe: " + err.Error()
	}
	ctx, cancel := context.WithTimeout(ctx, ProbeTimeout)
	defer cancel()
	pr, pw, err := os.Pipe()
	if err != nil {
		return "probe: " + err.Error()
	}
	defer pr.Close()
	var errb bytes.Buffer
	cmd := exec.CommandContext(ctx, binary, probeArgs(bios)...)
	cmd.Stdout, cmd.Stderr = pw, &errb
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	err = cmd.Start()
	pw.Close()
	if err != nil {
		return "starting " + binary + ": " + err.Error()
	}
	seen, ok := readUntil(pr, probeOK) // ends at EOF: qemu exited or was killed
	_ = cmd.Process.Kill()
	werr := cmd.Wait()
	switch {
	case ok:
		return ""
	case ctx.Err() != nil:
		return fmt.Sprintf("the probe guest %s within %s", probeStage(seen), ProbeTimeout)
	case qemuSaid(errb.String()) != "":
		return "qemu: " + qemuSaid(errb.String())
	default:
		return fmt.Sprintf("qemu exited (%v) before the guest ran", werr)
	}
}

// probeOK is what the probe guest prints once it runs 64-bit code.
const probeOK = "RPL\n"

// readUntil reads r until it has seen want (true) or hits EOF or an error
// (false), and returns what it read.
func readUntil(r *os.File, want string) (string, bool) {
	var got []byte
	buf := make([]byte, 256)
	for len(got) < 4096 {
		n, err := r.Read(buf)
		got = append(got, buf[:n]...)
		if bytes.Contains(got, []byte(want)) {
			return string(got), true
		}
		if err != nil {
			break
		}
	}
	return string(got), false
}

// probeStage says how far a probe guest got from what it printed.
func probeStage(out string) string {
	switch {
	case strings.Contains(out, "RP"):
		return "reached protected mode but not long mode"
	case strings.Contains(out, "R"):
		return "ran in real mode but never reached protected mode"
	default:
		return "printed nothing"
	}
}

// qemuSaid picks what explains a qemu failure from its stderr: the lines
// that say error, without assertion dumps and signal notes.
func qemuSaid(stderr string) string {
	var keep []string
	for _, l := range strings.Split(stderr, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.Contains(l, "Assertion") || strings.Contains(l, "terminating on signal") {
			continue
		}
		keep = append(keep, l)
	}
	if len(keep) > 3 {
		keep = keep[:3]
	}
	return strings.Join(keep, "; ")
}

// probeArgs boots the probe image as the firmware of a small q35 machine
// with the CPU model a KVM run uses, serial on stdout.
func probeArgs(bios string) []string {
	return append([]string{
		"-nodefaults", "-no-user-config",
		"-machine", "q35",
		"-m", "16",
		"-display", "none",
		"-bios", bios,
		"-serial", "stdio",
		"-no-reboot",
	}, accelArgs(AccelKVM)...)
}

// probeCode is testdata/probe.S assembled (bytes 0 to 0xc4); probeReset is
// the jump at the reset vector (0xfff0). The rest of the 64 KiB is zero.
const (
	probeCode = "baf803b052eefab800f08ed8660f0116c0000f20c06683c8010f22c066ea2400" +
		"0f00080066b810008ed88ec08ed0b050eebf0010000031c0b9000c0000f3abc7" +
		"050010000003200000c7050020000003300000c7050030000083000000b80010" +
		"00000f22d80f20e083c8200f22e0b9800000c00f320d000100000f300f20c00d" +
		"000000800f22c0ea8e000f00180066baf803b04ceeb00aeef4ebfd8db4000090" +
		"0000000000000000ffff0000009acf00ffff00000092cf00ffff0000009aaf00" +
		"1f00a0000f"
	probeReset = "ea000000f0"
)

// probeImage returns the probe's 64 KiB firmware image.
func probeImage() []byte {
	img := make([]byte, 64<<10)
	code, _ := hex.DecodeString(probeCode)
	reset, _ := hex.DecodeString(probeReset)
	copy(img, code)
	copy(img[0xfff0:], reset)
	return img
}
