package netconf

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
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
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
		}
		if lease, err = acquire(ctx, name); err != nil {
			return Lease{}, name, err
		}
	}
	return lease, name, configure(link, lease)
}

// configure sets the lease's address, with lifetimes that end with the
// lease (the kernel removes the address then), and the default route.
func configure(link netlink.Link, l Lease) error {
	life := l.lifetime(time.Now())
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: l.Addr.Addr().AsSlice(), Mask: net.CIDRMask(l.Addr.Bits(), 32)},
		ValidLft: life, PreferedLft: life}
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

// Keep holds the DHCP lease l on the interface name until ctx ends. It
// renews at T1 with the server that granted the lease, rebinds at T2 with
// any server, and gives the address the lifetime of each new lease. A lease
// lost (a NAK, or no answer before it ends) loses its address, and Keep
// asks for a new one. report hears of each new lease and each loss. A
// static configuration or an infinite lease returns at once.
func Keep(ctx context.Context, name string, l Lease, report func(Lease, error)) {
	for l.Time > 0 && l.ack != nil {
		n, err := extend(ctx, name, l)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			report(Lease{}, fmt.Errorf("lease of %s on %s lost: %w", l.Addr, name, err))
			_ = unset(name, l.Addr)
			if n, err = reacquire(ctx, name); err != nil {
				return
			}
		}
		if n.Addr != l.Addr {
			_ = unset(name, l.Addr)
		}
		if err := apply(name, n); err != nil {
			report(n, err)
		} else {
			report(n, nil)
		}
		l = n
	}
}

// reacquire asks for a new lease, a minute at a time, until one comes or
// ctx ends.
func reacquire(ctx context.Context, name string) (Lease, error) {
	for {
		l, err := until(ctx, time.Now().Add(time.Minute), func(ctx context.Context) (Lease, error) { return acquire(ctx, name) })
		if err == nil || ctx.Err() != nil {
			return l, err
		}
	}
}

func apply(name string, l Lease) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("finding interface %s: %w", name, err)
	}
	return configure(link, l)
}

// unset removes an address the host no longer holds.
func unset(name string, p netip.Prefix) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return err
	}
	return netlink.AddrDel(link, &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), 32)}})
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
