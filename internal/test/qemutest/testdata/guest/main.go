// Command guest is a tiny PID 1 for boot tests. It prints "hello from guest",
// loads the kernel modules found in /modules (in name order), optionally
// brings up eth0 with qemu's user-network address and serves HTTP, and then
// does what the kernel command line asks:
//
//	bulkhead.guest=wait      wait for the ACPI power button, then power off (default)
//	bulkhead.guest=poweroff  power off at once
//	bulkhead.guest=reboot    reboot at once
//	bulkhead.guest=panic     exit, which panics the kernel
//	bulkhead.listen=PORT     serve HTTP on PORT ("hello over http")
//	bulkhead.write=DEV       write "written by the guest" at the start of DEV, sync ("wrote DEV")
//
// It reports its firmware ("firmware: efi" or "firmware: bios").
// It uses only the standard library so that it builds outside any module.
package main

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
	"unsafe"
)

const sysFinitModule = 313 // x86-64

func main() {
	setup()
	fmt.Println("hello from guest")
	if _, err := os.Stat("/sys/firmware/efi"); err == nil {
		fmt.Println("firmware: efi")
	} else {
		fmt.Println("firmware: bios")
	}
	args := cmdline()
	loadModules()
	if port := args["bulkhead.listen"]; port != "" {
		serve(port)
	}
	if dev := args["bulkhead.write"]; dev != "" {
		writeDisk(dev)
	}
	switch mode := args["bulkhead.guest"]; mode {
	case "poweroff":
		powerOff()
	case "reboot":
		fmt.Println("guest rebooting")
		syscall.Sync()
		_ = syscall.Reboot(syscall.LINUX_REBOOT_CMD_RESTART)
	case "panic":
		fmt.Println("guest exiting")
		os.Exit(1)
	default:
		watchPowerButton()
		fmt.Println("guest waiting")
		select {}
	}
}

func setup() {
	for _, m := range []struct{ dir, fs string }{{"/proc", "proc"}, {"/sys", "sysfs"}, {"/dev", "devtmpfs"}} {
		_ = os.MkdirAll(m.dir, 0o755)
		if err := syscall.Mount(m.fs, m.dir, m.fs, 0, ""); err != nil {
			fmt.Printf("mount %s: %v\n", m.dir, err)
		}
	}
}

func cmdline() map[string]string {
	b, _ := os.ReadFile("/proc/cmdline")
	args := map[string]string{}
	for _, f := range strings.Fields(string(b)) {
		k, v, _ := strings.Cut(f, "=")
		args[k] = v
	}
	return args
}

func loadModules() {
	mods, _ := filepath.Glob("/modules/*.ko")
	sort.Strings(mods)
	for _, m := range mods {
		f, err := os.Open(m)
		if err != nil {
			fmt.Printf("module %s: %v\n", m, err)
			continue
		}
		params := []byte{0}
		_, _, errno := syscall.Syscall(sysFinitModule, f.Fd(), uintptr(unsafe.Pointer(&params[0])), 0)
		f.Close()
		if errno != 0 && errno != syscall.EEXIST {
			fmt.Printf("module %s: %v\n", m, errno)
		}
	}
}

func powerOff() {
	fmt.Println("guest powering off")
	syscall.Sync()
	_ = syscall.Reboot(syscall.LINUX_REBOOT_CMD_POWER_OFF)
}

// watchPowerButton powers off on the first KEY_POWER press from any input
// device (the ACPI button driver reports the power button as one). The
// devices present now are open when it returns; later ones are picked up.
func watchPowerButton() {
	seen := map[string]bool{}
	scan := func() {
		devs, _ := filepath.Glob("/dev/input/event*")
		for _, d := range devs {
			if seen[d] {
				continue
			}
			seen[d] = true
			if f, err := os.Open(d); err == nil {
				go readEvents(f)
			}
		}
	}
	scan()
	go func() {
		for {
			time.Sleep(200 * time.Millisecond)
			scan()
		}
	}()
}

func readEvents(f *os.File) {
	defer f.Close()
	const evKey, keyPower = 1, 116
	ev := make([]byte, 24) // struct input_event on x86-64
	for {
		if _, err := f.Read(ev); err != nil {
			return
		}
		typ := binary.LittleEndian.Uint16(ev[16:])
		code := binary.LittleEndian.Uint16(ev[18:])
		value := int32(binary.LittleEndian.Uint32(ev[20:]))
		if typ == evKey && code == keyPower && value == 1 {
			fmt.Println("power button pressed")
			powerOff()
		}
	}
}

// serve configures lo and eth0 (10.0.2.15/24, qemu's user network) and
// serves HTTP on port.
func serve(port string) {
	ifup("lo", net.IPv4(127, 0, 0, 1), net.IPv4Mask(255, 0, 0, 0))
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := net.InterfaceByName("eth0"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			fmt.Println("no eth0")
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	ifup("eth0", net.IPv4(10, 0, 2, 15), net.IPv4Mask(255, 255, 255, 0))
	ln, err := net.Listen("tcp", ":"+port)
	if err != nil {
		fmt.Printf("listen: %v\n", err)
		return
	}
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "hello over http")
	}))
	fmt.Printf("listening on %s\n", port)
}

// ifreq is struct ifreq with a sockaddr_in or flags in its union.
type ifreq struct {
	name [16]byte
	data [24]byte
}

func ifup(name string, ip net.IP, mask net.IPMask) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM, 0)
	if err != nil {
		fmt.Printf("socket: %v\n", err)
		return
	}
	defer syscall.Close(fd)
	set := func(req uintptr, fill func(*ifreq)) {
		var r ifreq
		copy(r.name[:], name)
		fill(&r)
		if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), req, uintptr(unsafe.Pointer(&r))); errno != 0 {
			fmt.Printf("ioctl %s %#x: %v\n", name, req, errno)
		}
	}
	inet := func(a []byte) func(*ifreq) {
		return func(r *ifreq) {
			binary.LittleEndian.PutUint16(r.data[0:], syscall.AF_INET)
			copy(r.data[4:8], a)
		}
	}
	set(syscall.SIOCSIFADDR, inet(ip.To4()))
	set(syscall.SIOCSIFNETMASK, inet(mask))
	set(syscall.SIOCSIFFLAGS, func(r *ifreq) {
		binary.LittleEndian.PutUint16(r.data[0:], syscall.IFF_UP|syscall.IFF_RUNNING)
	})
}

// writeDisk writes a marker at the start of dev and syncs it, waiting a
// little for the device to appear.
func writeDisk(dev string) {
	for i := 0; i < 50; i++ {
		if _, err := os.Stat(dev); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	f, err := os.OpenFile(dev, os.O_WRONLY, 0)
	if err != nil {
		fmt.Printf("write %s: %v\n", dev, err)
		return
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte("written by the guest\n"), 0); err != nil {
		fmt.Printf("write %s: %v\n", dev, err)
		return
	}
	if err := f.Sync(); err != nil {
		fmt.Printf("sync %s: %v\n", dev, err)
		return
	}
	fmt.Printf("wrote %s\n", dev)
}
