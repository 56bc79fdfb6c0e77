package netconf

import (
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestFromCmdline(t *testing.T) {
	p := netip.MustParsePrefix
	a := netip.MustParseAddr
	for _, c := range []struct {
		cmdline string
		want    Config
	}{
		{"console=ttyS0 panic=-1", Config{Mode: DHCP}},
		{"ip=dhcp", Config{Mode: DHCP}},
		{"ip=off", Config{Mode: Off}},
		{"ip=none quiet", Config{Mode: Off}},
		{"ip=10.0.2.15::10.0.2.2:255.255.255.0:box:eth0:off", Config{Mode: Off, Hostname: "box", Device: "eth0"}},
		{"ip=10.0.2.15::10.0.2.2:255.255.255.0:box:eth0:none:10.0.2.3", Config{Mode: Off, Hostname: "box", Device: "eth0"}},
		{"ip=10.0.2.15::10.0.2.2:255.255.255.0:box:eth0::10.0.2.3:1.1.1.1", Config{Mode: Static,
			Addr: p("10.0.2.15/24"), Gateway: a("10.0.2.2"), Hostname: "box", Device: "eth0",
			DNS: []netip.Addr{a("10.0.2.3"), a("1.1.1.1")}}},
		{"ip=192.168.1.9:::255.255.0.0", Config{Mode: Static, Addr: p("192.168.1.9/16")}},
		{"ip=192.168.1.9", Config{Mode: Static, Addr: p("192.168.1.9/24")}},
		{"ip=:::::eth1:dhcp", Config{Mode: DHCP, Device: "eth1"}},
		{"ip=off ip=dhcp", Config{Mode: DHCP}},
	} {
		got, err := FromCmdline(c.cmdline)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("FromCmdline(%q) = %+v, %v; want %+v", c.cmdline, got, err, c.want)
		}
	}
	for _, bad := range []string{"ip=10.0.2", "ip=10.0.2.15:::255.0.255.0", "ip=10.0.2.15::gw", "ip=10.0.2.15:::::::dns"} {
		if _, err := FromCmdline(bad); err == nil {
			t.Errorf("FromCmdline(%q): want error", bad)
		}
	}
}

func TestEthernetsAndResolvConf(t *testing.T) {
	dir := t.TempDir()
	for name, typ := range map[string]string{"lo": "772", "eth1": "1", "eth0": "1", "veth0": "1", "ens3": "1"} {
		os.MkdirAll(filepath.Join(dir, name), 0o755)
		os.WriteFile(filepath.Join(dir, name, "type"), []byte(typ+"\n"), 0o644)
		if name != "veth0" { // virtual: no device
			os.MkdirAll(filepath.Join(dir, name, "device"), 0o755)
		}
	}
	if got := ethernets(dir); !reflect.DeepEqual(got, []string{"ens3", "eth0", "eth1"}) {
		t.Fatalf("ethernets = %q", got)
	}
	p := filepath.Join(dir, "run/resolvconf/resolv.conf")
	if err := WriteResolvConf(p, []netip.Addr{netip.MustParseAddr("10.0.2.3")}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "nameserver 10.0.2.3\n" {
		t.Fatalf("resolv.conf %q", b)
	}
}
