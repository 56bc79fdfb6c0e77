// Package qemu boots bulkhead artifacts in qemu-system-x86_64 and watches
// them: the serial console is captured (and copied to a writer), tests wait
// for text on it, the guest can be powered down through the ACPI power button
// (QMP), and Wait reports how the guest ended: poweroff, reboot, panic,
// timeout or killed.
//
// Guest networking, when asked for, is qemu user networking with restrict=on
// (the guest reaches nothing outside), with host ports forwarded from
// 127.0.0.1 only. The accelerator is KVM only when a probe guest proves
// that KVM can run one (accel.go), software emulation (TCG) otherwise.
package qemu

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Defaults for Config's zero values.
const (
	DefaultBinary   = "qemu-system-x86_64"
	DefaultMemoryMB = 1024
	DefaultCPUs     = 1
	DefaultOVMFCode = "/usr/share/OVMF/OVMF_CODE_4M.fd"
	DefaultOVMFVars = "/usr/share/OVMF/OVMF_VARS_4M.fd"
)

// Config describes one VM. Kernel (direct kernel boot), Disk or ISO says what
// boots.
type Config struct {
	Kernel  string // bzImage for direct kernel boot
	Initrd  string // initrd for Kernel
	Cmdline string // kernel command line; "console=ttyS0" is added when it names no console

	Disk string // raw disk image, attached as a virtio disk
	ISO  string // ISO image, attached as a CD-ROM
	// Snapshot leaves Disk as it was: the guest's writes go to a temporary
	// overlay that qemu discards when it exits.
	Snapshot bool
	// DiskSize, when larger than Disk, is the size of the disk the guest
	// sees, as when an image is written to a larger disk (a bulkhead host
	// grows its data partition to the end). Disk itself grows to it,
	// sparsely; with Snapshot the guest boots a grown sparse copy of it,
	// removed when qemu exits, and Disk stays as it was.
	DiskSize int64

	// UEFI boots through OVMF with a fresh copy of the variable store per run.
	UEFI     bool
	OVMFCode string // default DefaultOVMFCode
	OVMFVars string // template variable store, default DefaultOVMFVars
	// VarsStore, when set, is the variable store itself (used in place,
	// not copied): what firmware writes, such as enrolled Secure Boot
	// keys, persists to the next run.
	VarsStore string
	// SecureBoot gives the machine SMM and a secure flash, which OVMF's
	// Secure Boot build (OVMF_CODE_4M.secboot.fd) needs.
	SecureBoot bool

	MemoryMB int // default DefaultMemoryMB
	CPUs     int // default DefaultCPUs

	// Network gives the guest a virtio NIC on qemu's restricted user network
	// (10.0.2.15/24). Forwards imply it.
	Network  bool
	Forwards []Forward
	// GuestForwards let the guest reach the host (through restrict=on)
	// at chosen addresses only. They imply Network.
	GuestForwards []GuestForward

	// AllowReboot lets the guest reboot (needed for A/B tests). Without it a
	// guest reboot ends the VM with Result Reboot, and a kernel panic seen on
	// the console ends it with Result Panic.
	AllowReboot bool

	Console io.Writer     // receives a copy of the serial console, if set
	Timeout time.Duration // kill the VM after this long (Result Timeout); 0: never

	Binary    string   // default DefaultBinary
	Accel     string   // AccelAuto, AccelKVM, AccelTCG, or "": $BULKHEAD_ACCEL, else auto (see ResolveAccel)
	ExtraArgs []string // appended to qemu's arguments
}

// Forward forwards a host port on 127.0.0.1 to a guest port.
type Forward struct {
	Proto     string // "tcp" (default) or "udp"
	HostAddr  string // must be empty or a loopback address; default 127.0.0.1
	HostPort  int
	GuestPort int
}

// String returns the forward as qemu's hostfwd value.
func (f Forward) String() string {
	return fmt.Sprintf("%s:%s:%d-:%d", f.Proto, f.HostAddr, f.HostPort, f.GuestPort)
}

// ErrPortInUse reports a forward whose host port another program holds.
var ErrPortInUse = errors.New("already in use")

// checkPortsFree refuses forwards whose host port is taken now (qemu would
// fail with no word on which): a moment later it may be taken again, but
// the common case, a second run or a server left running, is named.
func checkPortsFree(fwds []Forward) error {
	for _, f := range fwds {
		addr := net.JoinHostPort(f.HostAddr, strconv.Itoa(f.HostPort))
		var err error
		if f.Proto == "udp" {
			var c net.PacketConn
			if c, err = net.ListenPacket("udp", addr); err == nil {
				c.Close()
			}
		} else {
			var l net.Listener
			if l, err = net.Listen("tcp", addr); err == nil {
				l.Close()
			}
		}
		if err != nil {
			return fmt.Errorf("port %s/%s %w (another program, or another run, holds it): publish another host port", addr, f.Proto, ErrPortInUse)
		}
	}
	return nil
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// withDefaults fills zero values and checks the config.
func (c Config) withDefaults() (Config, error) {
	if c.Kernel == "" && c.Disk == "" && c.ISO == "" {
		return c, errors.New("nothing to boot: set a kernel, disk or ISO")
	}
	if c.Kernel == "" && (c.Initrd != "" || c.Cmdline != "") {
		return c, errors.New("initrd or cmdline without a kernel")
	}
	if c.MemoryMB == 0 {
		c.MemoryMB = DefaultMemoryMB
	}
	if c.CPUs == 0 {
		c.CPUs = DefaultCPUs
	}
	if c.MemoryMB < 0 || c.CPUs < 0 {
		return c, errors.New("memory and cpus must be positive")
	}
	if c.Binary == "" {
		c.Binary = DefaultBinary
	}
	if c.OVMFCode == "" {
		c.OVMFCode = DefaultOVMFCode
	}
	if c.OVMFVars == "" {
		c.OVMFVars = DefaultOVMFVars
	}
	fwds := make([]Forward, len(c.Forwards))
	for i, f := range c.Forwards {
		var err error
		if fwds[i], err = f.normalize(); err != nil {
			return c, err
		}
	}
	c.Forwards = fwds
	for _, f := range c.GuestForwards {
		if net.ParseIP(f.GuestAddr) == nil || f.GuestPort <= 0 || f.Command == "" || strings.Contains(f.Command, ",") {
			return c, fmt.Errorf("guest forward %s: want an address, a port and a command without commas", f)
		}
	}
	return c, nil
}

func (f Forward) normalize() (Forward, error) {
	if f.Proto == "" {
		f.Proto = "tcp"
	}
	if f.Proto != "tcp" && f.Proto != "udp" {
		return f, fmt.Errorf("forward %d: protocol %q is not tcp or udp", f.HostPort, f.Proto)
	}
	if f.HostAddr == "" {
		f.HostAddr = "127.0.0.1"
	}
	if ip := net.ParseIP(f.HostAddr); ip == nil || !ip.IsLoopback() || ip.To4() == nil {
		return f, fmt.Errorf("forward %d: host address %s is not an IPv4 loopback address", f.HostPort, f.HostAddr)
	}
	if f.HostPort < 1 || f.HostPort > 65535 || f.GuestPort < 1 || f.GuestPort > 65535 {
		return f, fmt.Errorf("forward %d:%d: port out of range", f.HostPort, f.GuestPort)
	}
	return f, nil
}

// args returns qemu's arguments for c (after withDefaults). dir is the run's
// private directory holding the QMP socket and the UEFI variable store.
func (c Config) args(dir string) []string {
	a := []string{
		"-nodefaults", "-no-user-config",
		"-machine", c.machine(),
		"-m", strconv.Itoa(c.MemoryMB),
		"-smp", strconv.Itoa(c.CPUs),
		"-display", "none",
		"-chardev", "stdio,id=console,signal=off",
		"-serial", "chardev:console",
		"-qmp", "unix:" + filepath.Join(dir, qmpSocket) + ",server=on,wait=on",
		"-device", "pvpanic",
		// A hardware watchdog for the guest's init to arm; it resets the
		// machine when the guest stops petting it.
		"-device", "i6300esb", "-action", "watchdog=reset",
	}
	a = append(a, accelArgs(c.Accel)...)
	if c.AllowReboot {
		a = append(a, "-action", "panic=none")
	} else {
		a = append(a, "-no-reboot", "-action", "panic=exit-failure")
	}
	if c.UEFI {
		vars := filepath.Join(dir, varsFile)
		if c.VarsStore != "" {
			vars = c.VarsStore
		}
		a = append(a,
			"-drive", "if=pflash,format=raw,unit=0,readonly=on,file="+c.OVMFCode,
			"-drive", "if=pflash,format=raw,unit=1,file="+vars)
		if c.SecureBoot {
			a = append(a, "-global", "driver=cfi.pflash01,property=secure,value=on")
		}
	}
	if c.Kernel != "" {
		a = append(a, "-kernel", c.Kernel, "-append", kernelCmdline(c.Cmdline))
		if c.Initrd != "" {
			a = append(a, "-initrd", c.Initrd)
		}
	}
	if c.Disk != "" {
		drive := "if=virtio,format=raw,file=" + c.Disk
		if c.Snapshot {
			drive += ",snapshot=on"
		}
		a = append(a, "-drive", drive)
	}
	if c.ISO != "" {
		a = append(a, "-drive", "if=none,id=cd0,media=cdrom,readonly=on,file="+c.ISO,
			"-device", "ide-cd,drive=cd0,bus=ide.0,bootindex=0")
	}
	if nic := c.nicArg(); nic != "" {
		a = append(a, "-nic", nic)
	}
	return append(a, c.ExtraArgs...)
}

func (c Config) machine() string {
	if c.SecureBoot {
		return "q35,smm=on"
	}
	return "q35"
}

func (c Config) nicArg() string {
	if !c.Network && len(c.Forwards) == 0 && len(c.GuestForwards) == 0 {
		return ""
	}
	nic := "user,model=virtio-net-pci,restrict=on"
	for _, f := range c.Forwards {
		nic += ",hostfwd=" + f.String()
	}
	for _, f := range c.GuestForwards {
		nic += ",guestfwd=" + f.String()
	}
	return nic
}

// GuestForward sends the guest's TCP connections to GuestAddr:GuestPort
// (an address in 10.0.2.0/24 that nothing else uses, such as 10.0.2.100)
// to a new Command on the host, run for each connection with the
// connection on its standard input and output (a proxy to a 127.0.0.1
// port, say). qemu splits its options at commas: Command has none.
type GuestForward struct {
	GuestAddr string
	GuestPort int
	Command   string
}

// String returns the forward as qemu's guestfwd value.
func (f GuestForward) String() string {
	return fmt.Sprintf("tcp:%s:%d-cmd:%s", f.GuestAddr, f.GuestPort, f.Command)
}

// kernelCmdline adds a serial console unless the command line names one.
func kernelCmdline(s string) string {
	for _, f := range strings.Fields(s) {
		if strings.HasPrefix(f, "console=") {
			return s
		}
	}
	return strings.TrimSpace(s + " console=ttyS0")
}

// accelArgs selects a resolved accelerator: kvm with the host's CPU model,
// anything else software emulation with every feature it has.
func accelArgs(accel string) []string {
	if accel == AccelKVM {
		return []string{"-accel", "kvm", "-cpu", "host"}
	}
	return []string{"-accel", "tcg", "-cpu", "max"}
}

const (
	qmpSocket = "qmp.sock"
	varsFile  = "OVMF_VARS.fd"
)

// Start boots a VM. ctx bounds the VM's life: when it is done the VM is
// killed (Result Killed). Start returns once qemu runs and its QMP monitor
// answers; call Wait (or Kill and Wait) to release it.
func Start(ctx context.Context, cfg Config) (*VM, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("starting qemu: %w", err)
	}
	if err := checkPortsFree(cfg.Forwards); err != nil {
		return nil, fmt.Errorf("starting qemu: %w", err)
	}
	accel, err := ResolveAccel(ctx, cfg.Binary, cfg.Accel)
	if err != nil {
		return nil, fmt.Errorf("starting qemu: %w", err)
	}
	cfg.Accel = accel.Name
	dir, err := os.MkdirTemp("", "bulkhead-qemu-")
	if err != nil {
		return nil, fmt.Errorf("starting qemu: %w", err)
	}
	if cfg.Disk, cfg.Snapshot, err = sizeDisk(cfg.Disk, cfg.DiskSize, cfg.Snapshot, dir); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("starting qemu: %w", err)
	}
	if cfg.UEFI && cfg.VarsStore == "" {
		if err := copyFile(cfg.OVMFVars, filepath.Join(dir, varsFile)); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("copying uefi variable store: %w", err)
		}
	}
	vm := newVM(cfg, dir)
	vm.accel = accel
	cmd := exec.Command(cfg.Binary, cfg.args(dir)...)
	cmd.Stdout = vm.console
	cmd.Stderr = vm.stderr
	// Own process group: a Ctrl-C on the terminal reaches the caller, which
	// decides between a power-down and a kill, not qemu.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("starting qemu: %w", err)
	}
	vm.cmd = cmd
	go vm.reap()
	if err := vm.connectQMP(ctx); err != nil {
		return nil, vm.abort(err)
	}
	vm.watch(ctx)
	return vm, nil
}

// abort ends a qemu whose start failed and returns err with what qemu said.
func (vm *VM) abort(err error) error {
	select {
	case <-vm.procDone: // qemu failed by itself: its stderr says why
	case <-time.After(time.Second):
	}
	vm.Kill()
	vm.Wait()
	if said := lastLines(vm.stderr.String(), 10); said != "" {
		return fmt.Errorf("starting qemu: %w; qemu said: %s", err, said)
	}
	return fmt.Errorf("starting qemu: %w", err)
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
