package qemu

import (
	"slices"
	"strings"
	"testing"
)

func TestArgs(t *testing.T) {
	cfg, err := Config{
		Kernel:   "k",
		Initrd:   "i",
		Cmdline:  "quiet",
		UEFI:     true,
		Forwards: []Forward{{HostPort: 2222, GuestPort: 22}, {Proto: "udp", HostPort: 5353, GuestPort: 53}},
		Accel:    "tcg",
	}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	args := cfg.args("/run/dir")
	joined := strings.Join(args, " ")
	for _, want := range []string{
		"-nodefaults",
		"-accel tcg -cpu max",
		"-m 1024 -smp 1",
		"-no-reboot -action panic=exit-failure",
		"-append quiet console=ttyS0",
		"-serial chardev:console",
		"-qmp unix:/run/dir/qmp.sock,server=on,wait=on",
		"-nic user,model=virtio-net-pci,restrict=on,hostfwd=tcp:127.0.0.1:2222-:22,hostfwd=udp:127.0.0.1:5353-:53",
		"if=pflash,format=raw,unit=0,readonly=on,file=" + DefaultOVMFCode,
		"if=pflash,format=raw,unit=1,file=/run/dir/OVMF_VARS.fd",
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("args lack %q:\n%s", want, joined)
		}
	}

	cfg.AllowReboot, cfg.Forwards, cfg.Cmdline = true, nil, "console=hvc0"
	args = cfg.args("/run/dir")
	if slices.Contains(args, "-no-reboot") || slices.Contains(args, "-nic") || !slices.Contains(args, "console=hvc0") {
		t.Errorf("reboots allowed, no network, own console: %q", args)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []Config{
		{},
		{Initrd: "i"},
		{Kernel: "k", Forwards: []Forward{{HostAddr: "0.0.0.0", HostPort: 1, GuestPort: 1}}},
		{Kernel: "k", Forwards: []Forward{{HostAddr: "10.0.0.1", HostPort: 1, GuestPort: 1}}},
		{Kernel: "k", Forwards: []Forward{{Proto: "sctp", HostPort: 1, GuestPort: 1}}},
		{Kernel: "k", Forwards: []Forward{{HostPort: 0, GuestPort: 1}}},
		{Kernel: "k", MemoryMB: -1},
	} {
		if _, err := c.withDefaults(); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
}

func TestLastLines(t *testing.T) {
	if got := lastLines("a\r\nb\r\nc\r\n", 2); got != "b\nc" {
		t.Errorf("lastLines = %q", got)
	}
}

// TestGuestForwardArgs: a guest forward becomes a guestfwd to a command
// on the restricted user network; a command with a comma is refused.
func TestGuestForwardArgs(t *testing.T) {
	cfg := Config{Kernel: "k", GuestForwards: []GuestForward{{GuestAddr: "10.0.2.100", GuestPort: 5000, Command: "proxy 127.0.0.1:4000"}}}
	c, err := cfg.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.args("/run/dir"), " "); !strings.Contains(got, "-nic user,model=virtio-net-pci,restrict=on,guestfwd=tcp:10.0.2.100:5000-cmd:proxy 127.0.0.1:4000") {
		t.Errorf("args: %s", got)
	}
	cfg.GuestForwards[0].Command = "a,b"
	if _, err := cfg.withDefaults(); err == nil {
		t.Error("a command with a comma was accepted")
	}
}
