// Package netconf brings up the host's network: loopback, and the first
// ethernet interface by DHCP or from the kernel's ip= parameter.
package netconf

import (
	"fmt"
	"net/netip"
	"strings"
)

// Mode is how the primary interface gets its address.
type Mode int

// The modes ip= selects.
const (
	DHCP   Mode = iota // the default
	Static             // ip=<client>:...
	Off                // ip=off or ip=none
)

// Config is the network configuration from the kernel command line.
type Config struct {
	Mode     Mode
	Device   string // empty: the first ethernet interface
	Addr     netip.Prefix
	Gateway  netip.Addr
	Hostname string
	DNS      []netip.Addr
}

// FromCmdline reads ip= from a kernel command line (the last one wins),
// in the kernel's nfsroot.rst form:
// ip=<client-ip>:<server-ip>:<gw-ip>:<netmask>:<hostname>:<device>:<autoconf>:<dns0-ip>:<dns1-ip>
// or ip=dhcp|on|any|off|none. Without ip=, the mode is DHCP.
func FromCmdline(cmdline string) (Config, error) {
	var val string
	var found bool
	for _, f := range strings.Fields(cmdline) {
		if v, ok := strings.CutPrefix(f, "ip="); ok {
			val, found = v, true
		}
	}
	if !found {
		return Config{Mode: DHCP}, nil
	}
	switch val {
	case "dhcp", "on", "any", "both", "bootp", "rarp":
		return Config{Mode: DHCP}, nil
	case "off", "none", "":
		return Config{Mode: Off}, nil
	}
	return parseIP(val)
}

func parseIP(val string) (Config, error) {
	f := strings.Split(val, ":")
	f = append(f, make([]string, 9-min(len(f), 9))...)
	c := Config{Hostname: f[4], Device: f[5]}
	switch f[6] {
	case "dhcp", "on", "any", "both":
		c.Mode = DHCP
		return c, nil
	case "off", "none":
		c.Mode = Off
		return c, nil
	}
	if f[0] == "" {
		c.Mode = DHCP
		return c, nil
	}
	ip, err := netip.ParseAddr(f[0])
	if err != nil || !ip.Is4() {
		return Config{}, fmt.Errorf("parsing ip=%s: bad client address %q", val, f[0])
	}
	bits := 24
	if f[3] != "" {
		mask, err := netip.ParseAddr(f[3])
		if err != nil || !mask.Is4() {
			return Config{}, fmt.Errorf("parsing ip=%s: bad netmask %q", val, f[3])
		}
		if bits, err = maskBits(mask.As4()); err != nil {
			return Config{}, fmt.Errorf("parsing ip=%s: %w", val, err)
		}
	}
	c.Mode = Static
	c.Addr = netip.PrefixFrom(ip, bits)
	if f[2] != "" {
		if c.Gateway, err = netip.ParseAddr(f[2]); err != nil {
			return Config{}, fmt.Errorf("parsing ip=%s: bad gateway %q", val, f[2])
		}
	}
	for _, d := range f[7:9] {
		if d == "" {
			continue
		}
		a, err := netip.ParseAddr(d)
		if err != nil {
			return Config{}, fmt.Errorf("parsing ip=%s: bad name server %q", val, d)
		}
		c.DNS = append(c.DNS, a)
	}
	return c, nil
}

// maskBits converts a dotted netmask to a prefix length.
func maskBits(m [4]byte) (int, error) {
	v := uint32(m[0])<<24 | uint32(m[1])<<16 | uint32(m[2])<<8 | uint32(m[3])
	bits := 0
	for v&(1<<31) != 0 {
		bits++
		v <<= 1
	}
	if v != 0 {
		return 0, fmt.Errorf("netmask %v is not contiguous", netip.AddrFrom4(m))
	}
	return bits, nil
}

// ResolvConf is the resolv.conf content for name servers.
func ResolvConf(dns []netip.Addr) []byte {
	var b strings.Builder
	for _, d := range dns {
		fmt.Fprintf(&b, "nameserver %s\n", d)
	}
	return []byte(b.String())
}
