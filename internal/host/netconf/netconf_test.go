package netconf

import (
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
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

// server is a DHCP server on a real UDP socket: it answers DISCOVER with
// an OFFER and REQUEST with an ACK, like qemu's user networking.
func server(t *testing.T, nak bool) (*net.UDPConn, func(client net.Addr)) {
	t.Helper()
	srv, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv, func(client net.Addr) {
		buf := make([]byte, 1500)
		for range 2 {
			n, _, err := srv.ReadFrom(buf)
			if err != nil {
				return
			}
			req := buf[:n]
			typ := byte(msgOffer)
			if req[242] == msgRequest {
				typ = msgAck
				if nak {
					typ = msgNak
				}
			}
			resp := make([]byte, 240)
			resp[0] = 2
			copy(resp[4:8], req[4:8])
			copy(resp[16:20], []byte{10, 0, 2, 15})
			copy(resp[236:], magicCookie)
			resp = append(resp, 0, optType, 1, typ,
				optSubnet, 4, 255, 255, 255, 0,
				optRouter, 4, 10, 0, 2, 2,
				optDNS, 8, 10, 0, 2, 3, 1, 1, 1, 1,
				optServer, 4, 10, 0, 2, 2,
				optLease, 4, 0, 1, 0x51, 0x80,
				optEnd)
			// A stray reply for another transaction comes first.
			stray := append([]byte(nil), resp...)
			binary.BigEndian.PutUint32(stray[4:], 0xdeadbeef)
			srv.WriteTo(stray, client)
			srv.WriteTo(resp, client)
		}
	}
}

func TestExchange(t *testing.T) {
	client, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	srv, serve := server(t, false)
	go serve(client.LocalAddr())
	send := func(b []byte) error { _, err := client.WriteTo(b, srv.LocalAddr()); return err }
	mac := net.HardwareAddr{0x52, 0x54, 0, 0x12, 0x34, 0x56}
	l, err := exchange(client, send, mac, 42, time.Now().Add(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	want := Lease{Addr: netip.MustParsePrefix("10.0.2.15/24"), Gateway: netip.MustParseAddr("10.0.2.2"),
		DNS:    []netip.Addr{netip.MustParseAddr("10.0.2.3"), netip.MustParseAddr("1.1.1.1")},
		Server: netip.MustParseAddr("10.0.2.2"), Time: 86400 * time.Second}
	if !reflect.DeepEqual(l, want) {
		t.Fatalf("lease %+v, want %+v", l, want)
	}
}

func TestExchangeNakAndTimeout(t *testing.T) {
	client, _ := net.ListenPacket("udp4", "127.0.0.1:0")
	defer client.Close()
	srv, serve := server(t, true)
	go serve(client.LocalAddr())
	send := func(b []byte) error { _, err := client.WriteTo(b, srv.LocalAddr()); return err }
	if _, err := exchange(client, send, make(net.HardwareAddr, 6), 7, time.Now().Add(5*time.Second)); err == nil {
		t.Fatal("NAK: want error")
	}
	quiet, _ := net.ListenPacket("udp4", "127.0.0.1:0")
	defer quiet.Close()
	send = func(b []byte) error { _, err := client.WriteTo(b, quiet.LocalAddr()); return err }
	begin := time.Now()
	if _, err := exchange(client, send, make(net.HardwareAddr, 6), 7, time.Now().Add(300*time.Millisecond)); err == nil {
		t.Fatal("no server: want error")
	}
	if time.Since(begin) > 2*time.Second {
		t.Fatal("deadline not kept")
	}
}

func TestMessageLayout(t *testing.T) {
	mac := net.HardwareAddr{1, 2, 3, 4, 5, 6}
	m := message(msgRequest, 0x01020304, mac, netip.MustParseAddr("10.0.2.15"), netip.MustParseAddr("10.0.2.2"))
	if m[0] != 1 || binary.BigEndian.Uint32(m[4:]) != 0x01020304 || m[10] != 0x80 ||
		!reflect.DeepEqual([]byte(m[28:34]), []byte(mac)) || m[len(m)-1] != optEnd {
		t.Fatalf("bad header % x", m[:40])
	}
	want := []byte{optType, 1, msgRequest, optRequested, 4, 10, 0, 2, 15, optServer, 4, 10, 0, 2, 2}
	if !reflect.DeepEqual(m[240:240+len(want)], want) {
		t.Fatalf("options % x", m[240:])
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
