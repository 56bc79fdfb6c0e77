package netconf

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// LoopbackUp brings lo up.
func LoopbackUp() error {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("finding loopback: %w", err)
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		return fmt.Errorf("bringing loopback up: %w", err)
	}
	return nil
}

// InterfaceWait bounds how long FirstEthernet waits for an interface: the
// init loads the NIC drivers before it asks, so a host that has none after
// this long has no network, and its onboot containers should not wait the
// whole DHCP deadline to learn that.
const InterfaceWait = 3 * time.Second

// FirstEthernet waits, at most InterfaceWait, until an ethernet interface
// backed by a device exists and returns the first by name.
func FirstEthernet(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, InterfaceWait)
	defer cancel()
	for {
		if names := ethernets("/sys/class/net"); len(names) > 0 {
			return names[0], nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("no ethernet interface after %s: %w", InterfaceWait, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// ethernets lists the interfaces under sysNet of type ethernet (1) that
// have a device, sorted by name.
func ethernets(sysNet string) []string {
	entries, err := os.ReadDir(sysNet)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		typ, err := os.ReadFile(filepath.Join(sysNet, e.Name(), "type"))
		if err != nil || strings.TrimSpace(string(typ)) != "1" {
			continue
		}
		if _, err := os.Stat(filepath.Join(sysNet, e.Name(), "device")); err != nil {
			continue
		}
		out = append(out, e.Name())
	}
	slices.Sort(out)
	return out
}

// Up configures the interface named by c (or the first ethernet one): brings
// it up, then sets the static address or asks DHCP, adds the default route,
// and returns the address, gateway and name servers it used.
func Up(ctx context.Context, c Config) (Lease, string, error) {
	name := c.Device
	if name == "" {
		var err error
		if name, err = FirstEthernet(ctx); err != nil {
			return Lease{}, "", err
		}
	}
	link, err := netlink.LinkByName(name)
	if err != nil {
		return Lease{}, name, fmt.Errorf("finding interface %s: %w", name, err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return Lease{}, name, fmt.Errorf("bringing %s up: %w", name, err)
	}
	lease := Lease{Addr: c.Addr, Gateway: c.Gateway, DNS: c.DNS}
	if c.Mode == DHCP {
		deadline, ok := ctx.Deadline()
		if !ok {
			deadline = time.Now().Add(10 * time.Second)
		}
		if lease, err = dhcp(name, link.Attrs().HardwareAddr, deadline); err != nil {
			return Lease{}, name, err
		}
	}
	return lease, name, configure(link, lease)
}

func configure(link netlink.Link, l Lease) error {
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: l.Addr.Addr().AsSlice(), Mask: net.CIDRMask(l.Addr.Bits(), 32)}}
	if err := netlink.AddrReplace(link, addr); err != nil {
		return fmt.Errorf("adding address %s: %w", l.Addr, err)
	}
	if !l.Gateway.IsValid() {
		return nil
	}
	route := &netlink.Route{LinkIndex: link.Attrs().Index, Gw: l.Gateway.AsSlice()}
	if err := netlink.RouteReplace(route); err != nil {
		return fmt.Errorf("adding default route via %s: %w", l.Gateway, err)
	}
	return nil
}

// dhcp asks for a lease on the interface name through a UDP socket bound to
// it (port 68), broadcasting to port 67.
func dhcp(name string, mac net.HardwareAddr, deadline time.Time) (Lease, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return Lease{}, fmt.Errorf("dhcp socket: %w", err)
	}
	for _, o := range []int{unix.SO_REUSEADDR, unix.SO_BROADCAST} {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, o, 1); err != nil {
			unix.Close(fd)
			return Lease{}, fmt.Errorf("dhcp socket option: %w", err)
		}
	}
	if err := unix.BindToDevice(fd, name); err != nil {
		unix.Close(fd)
		return Lease{}, fmt.Errorf("binding dhcp socket to %s: %w", name, err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: 68}); err != nil {
		unix.Close(fd)
		return Lease{}, fmt.Errorf("binding dhcp socket: %w", err)
	}
	f := os.NewFile(uintptr(fd), "dhcp")
	conn, err := net.FilePacketConn(f)
	f.Close()
	if err != nil {
		return Lease{}, fmt.Errorf("dhcp socket: %w", err)
	}
	defer conn.Close()
	servers := &net.UDPAddr{IP: net.IPv4bcast, Port: 67}
	send := func(b []byte) error {
		_, err := conn.WriteTo(b, servers)
		return err
	}
	var x [4]byte
	_, _ = rand.Read(x[:])
	return exchange(conn, send, mac, binary.BigEndian.Uint32(x[:]), deadline)
}

// WriteResolvConf writes the name servers to path (creating its directory).
func WriteResolvConf(path string, dns []netip.Addr) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.WriteFile(path, ResolvConf(dns), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
