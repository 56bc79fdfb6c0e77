package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/bulkhead-dev/bulkhead/builder/config"
	"github.com/bulkhead-dev/bulkhead/internal/qemu"
)

// Exit codes of `bulkhead run`, by how the guest ended.
const (
	runExitPanic   = 3
	runExitReboot  = 4
	runExitTimeout = 124
	runExitKilled  = 130
)

const runSynopsis = "[qemu] [flags] PREFIX|DISK.img|IMAGE.iso"

const runHelp = `
Boots PREFIX-kernel, PREFIX-initrd.img and PREFIX-cmdline (what 'bulkhead
build --format kernel+initrd' writes) in qemu, or the files named by
--kernel/--initrd/--cmdline. A raw-efi disk (NAME.img, or --disk) or an
iso-efi image (NAME.iso, or --iso) boots through UEFI firmware (OVMF) with
a fresh variable store per run; the guest writes to the disk image as a
host writes to its disk (the data partition, boot counting): --snapshot
sends those writes to a temporary overlay instead, so the image (and its
signed digest) stays as it was. The guest's disk is --disk-size (default
1G), as when the image is written to a larger disk: a smaller image file
grows to it (sparsely; under --snapshot a sparse copy does) and the host
grows /var to the end. The serial console streams to stdout;
stderr says what is published and how to stop, and names a service that
keeps restarting. qemu is the only backend: "bulkhead run NAME" is "bulkhead
run qemu NAME". Published ports listen on 127.0.0.1 only; the guest reaches nothing
outside. An interrupt (Ctrl-C) presses the guest's power button; a second
one kills qemu.

Accelerator (--accel, default $BULKHEAD_ACCEL, else auto): auto uses KVM
only when a probe guest proves KVM can run one (a nested KVM may open
/dev/kvm and still hang every guest), else software emulation (TCG) with a
line saying why; kvm fails with the probe's reason instead of hanging; tcg
never touches KVM.

Exit status:
  0    the guest powered off
  1    qemu failed
  2    usage error
  3    the guest kernel panicked
  4    the guest rebooted (reboots end the run)
  124  --timeout ran out
  130  killed (second interrupt)
`

func runCommand() command {
	return command{
		name:    "run",
		summary: "boot built artifacts in qemu with the console on stdout",
		run:     runRun,
	}
}

// runOptions is what the run verb's flags and arguments say.
type runOptions struct {
	cfg        qemu.Config
	consoleLog string
}

func runRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	opts, err := parseRunArgs(args, stderr)
	if err != nil {
		return err
	}
	interrupts := make(chan os.Signal, 2)
	signal.Notify(interrupts, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(interrupts)
	// The caller's context ends on the first interrupt; the VM must outlive
	// it so that the interrupt can power the guest down instead.
	return runQemu(context.WithoutCancel(ctx), opts, stdout, stderr, interrupts)
}

func parseRunArgs(args []string, stderr io.Writer) (runOptions, error) {
	fs := newFlags("run", runSynopsis, stderr)
	usage := fs.Usage
	fs.Usage = func() { usage(); fmt.Fprint(stderr, runHelp) }
	var opts runOptions
	c := &opts.cfg
	fs.StringVar(&c.Kernel, "kernel", "", "kernel `file` (overrides PREFIX-kernel)")
	fs.StringVar(&c.Initrd, "initrd", "", "initrd `file` (overrides PREFIX-initrd.img)")
	cmdlineFile := fs.String("cmdline", "", "kernel command line `file` (overrides PREFIX-cmdline)")
	appendArgs := fs.String("append", "", "extra kernel command line `arguments`")
	fs.StringVar(&c.Disk, "disk", "", "raw disk image `file` to boot")
	fs.StringVar(&c.ISO, "iso", "", "ISO image `file` to boot")
	fs.BoolVar(&c.UEFI, "uefi", false, "boot through UEFI firmware (OVMF), with a fresh variable store")
	fs.BoolVar(&c.Snapshot, "snapshot", false, "leave the disk image unchanged: the guest's writes go to a temporary overlay")
	diskSize := fs.String("disk-size", "1G", "the `size` of the disk the guest sees: a smaller raw disk image grows to it first (0: as it is)")
	fs.IntVar(&c.MemoryMB, "mem", qemu.DefaultMemoryMB, "guest memory in `MB`")
	fs.IntVar(&c.CPUs, "cpus", qemu.DefaultCPUs, "guest CPUs")
	fs.DurationVar(&c.Timeout, "timeout", 0, "kill the guest after this `duration` (exit 124); 0: never")
	fs.BoolVar(&c.AllowReboot, "allow-reboot", false, "let the guest reboot instead of ending the run")
	fs.StringVar(&c.Accel, "accel", "", "accelerator: `auto|kvm|tcg` (default $"+qemu.EnvAccel+", else auto)")
	fs.StringVar(&opts.consoleLog, "console-log", "", "also write the serial console to `file`")
	publish := publishFlag{fwds: &c.Forwards}
	fs.Var(publish, "publish", "forward 127.0.0.1:`HOSTPORT:GUESTPORT[/tcp|udp]` to the guest (repeatable)")
	fs.Var(publish, "p", "short for --publish `HOSTPORT:GUESTPORT[/tcp|udp]`")

	rest, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return opts, err
	}
	if err != nil {
		return opts, fmt.Errorf("%w: %v", errUsage, err)
	}
	switch c.Accel {
	case "", qemu.AccelAuto, qemu.AccelKVM, qemu.AccelTCG:
	default:
		return opts, fmt.Errorf("%w: --accel %q: want auto, kvm or tcg", errUsage, c.Accel)
	}
	if len(rest) == 1 && rest[0] != "qemu" {
		rest = []string{"qemu", rest[0]} // qemu is the default backend
	}
	if len(rest) == 0 || rest[0] != "qemu" {
		fs.Usage()
		return opts, fmt.Errorf("%w: the only backend is qemu: bulkhead run %s", errUsage, runSynopsis)
	}
	if len(rest) > 2 {
		return opts, fmt.Errorf("%w: unexpected arguments %q", errUsage, rest[2:])
	}
	prefix := ""
	if len(rest) == 2 {
		prefix = rest[1]
	}
	if err := opts.resolveFiles(prefix, *cmdlineFile); err != nil {
		return opts, err
	}
	if c.Disk != "" {
		if c.DiskSize, err = config.ParseSize(*diskSize); err != nil {
			return opts, fmt.Errorf("%w: --disk-size: %v", errUsage, err)
		}
	}
	c.Cmdline = strings.TrimSpace(c.Cmdline + " " + *appendArgs)
	return opts, nil
}

// parseInterspersed parses flags anywhere among the arguments and returns
// the positional ones.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	if err := parseArgs(fs, args); err != nil {
		return nil, err
	}
	return fs.Args(), nil
}

// resolveFiles fills the kernel, initrd and command line from PREFIX where
// no flag named them.
func (o *runOptions) resolveFiles(prefix, cmdlineFile string) error {
	c := &o.cfg
	if c.Kernel == "" && c.Disk == "" && c.ISO == "" {
		switch strings.ToLower(filepath.Ext(prefix)) {
		case ".img", ".raw":
			c.Disk, prefix = prefix, ""
		case ".iso":
			c.ISO, prefix = prefix, ""
		case ".tar":
			return fmt.Errorf("%w: %s is a tar (--format tar), which does not boot: build --format kernel+initrd and run the PREFIX (%s), or raw-efi (.img) or iso-efi (.iso)",
				errUsage, prefix, strings.TrimSuffix(prefix, ".tar"))
		}
	}
	if prefix != "" && c.Kernel == "" {
		if _, err := os.Stat(prefix + "-kernel"); errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%w: %s-kernel does not exist: PREFIX names what build --format kernel+initrd writes (PREFIX-kernel, PREFIX-initrd.img, PREFIX-cmdline); or run NAME.img or NAME.iso", errUsage, prefix)
		}
	}
	if prefix != "" && c.Kernel == "" {
		c.Kernel = prefix + "-kernel"
		if c.Initrd == "" {
			c.Initrd = prefix + "-initrd.img"
		}
		if cmdlineFile == "" {
			if _, err := os.Stat(prefix + "-cmdline"); err == nil {
				cmdlineFile = prefix + "-cmdline"
			}
		}
	}
	if c.Kernel == "" && c.Disk == "" && c.ISO == "" {
		return fmt.Errorf("%w: nothing to boot: give PREFIX, --kernel, --disk or --iso", errUsage)
	}
	if c.Kernel == "" {
		c.UEFI = true // raw-efi and iso-efi boot only through UEFI
	}
	for _, f := range []string{c.Kernel, c.Initrd, c.Disk, c.ISO} {
		if f == "" {
			continue
		}
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
	}
	if cmdlineFile != "" {
		b, err := os.ReadFile(cmdlineFile)
		if err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		c.Cmdline = strings.TrimSpace(string(b))
	}
	return nil
}

// publishFlag collects --publish HOSTPORT:GUESTPORT[/tcp|udp] values.
type publishFlag struct{ fwds *[]qemu.Forward }

func (p publishFlag) String() string {
	if p.fwds == nil {
		return ""
	}
	var s []string
	for _, f := range *p.fwds {
		s = append(s, fmt.Sprintf("%d:%d/%s", f.HostPort, f.GuestPort, f.Proto))
	}
	return strings.Join(s, ",")
}

func (p publishFlag) Set(v string) error {
	f, err := parsePublish(v)
	if err != nil {
		return err
	}
	*p.fwds = append(*p.fwds, f)
	return nil
}

func parsePublish(v string) (qemu.Forward, error) {
	ports, proto, hasProto := strings.Cut(v, "/")
	if !hasProto {
		proto = "tcp"
	}
	host, guest, ok := strings.Cut(ports, ":")
	hp, herr := strconv.Atoi(host)
	gp, gerr := strconv.Atoi(guest)
	if !ok || herr != nil || gerr != nil || (proto != "tcp" && proto != "udp") {
		return qemu.Forward{}, fmt.Errorf("%q is not HOSTPORT:GUESTPORT[/tcp|udp]", v)
	}
	if hp < 1 || hp > 65535 || gp < 1 || gp > 65535 {
		return qemu.Forward{}, fmt.Errorf("%q: port out of range", v)
	}
	return qemu.Forward{Proto: proto, HostAddr: "127.0.0.1", HostPort: hp, GuestPort: gp}, nil
}

// runQemu boots the guest and maps how it ended to an exit status. The first
// interrupt powers the guest down, the second kills it.
func runQemu(ctx context.Context, opts runOptions, stdout, stderr io.Writer, interrupts <-chan os.Signal) error {
	console := stdout
	if opts.consoleLog != "" {
		f, err := os.Create(opts.consoleLog)
		if err != nil {
			return fmt.Errorf("creating console log: %w", err)
		}
		defer f.Close()
		console = io.MultiWriter(stdout, f)
	}
	cfg := opts.cfg
	cfg.Console = io.MultiWriter(console, newServiceWatch(stderr))
	vm, err := qemu.Start(ctx, cfg)
	if err != nil {
		return err
	}
	if a := vm.Accel(); a.Why != "" {
		fmt.Fprintf(stderr, "bulkhead run: using software emulation (tcg): %s\n", a.Why)
	}
	printBanner(stderr, cfg, vm.Accel().Name)
	go forwardInterrupts(vm, interrupts, stderr)
	res, err := vm.Wait()
	if err != nil {
		return err
	}
	return runExit(res, stderr)
}

func forwardInterrupts(vm *qemu.VM, interrupts <-chan os.Signal, stderr io.Writer) {
	for n := 0; ; n++ {
		select {
		case <-vm.Done():
			return
		case <-interrupts:
		}
		if n > 0 {
			fmt.Fprintln(stderr, "bulkhead run: killing the guest")
			vm.Kill()
			continue
		}
		fmt.Fprintln(stderr, "bulkhead run: powering the guest down (interrupt again to kill it)")
		if err := vm.Powerdown(); err != nil && !errors.Is(err, qemu.ErrStopped) {
			fmt.Fprintf(stderr, "bulkhead run: %v; killing the guest\n", err)
			vm.Kill()
		}
	}
}

// runExit reports how the guest ended and returns the matching exit status.
func runExit(res qemu.Result, stderr io.Writer) error {
	detail := ""
	if res.Detail != "" {
		detail = " (" + res.Detail + ")"
	}
	fmt.Fprintf(stderr, "bulkhead run: guest ended: %s%s\n", res.Reason, detail)
	switch res.Reason {
	case qemu.Poweroff:
		return nil
	case qemu.Panic:
		return exitError{runExitPanic}
	case qemu.Reboot:
		return exitError{runExitReboot}
	case qemu.Timeout:
		return exitError{runExitTimeout}
	case qemu.Killed:
		return exitError{runExitKilled}
	default:
		return exitError{1}
	}
}
