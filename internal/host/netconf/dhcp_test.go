package netconf

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
)

func ack(t *testing.T, opts ...dhcpv4.Option) *nclient4.Lease {
	t.Helper()
	m, err := dhcpv4.New(dhcpv4.WithMessageType(dhcpv4.MessageTypeAck), dhcpv4.WithYourIP(net.IPv4(10, 0, 2, 15)),
		dhcpv4.WithServerIP(net.IPv4(10, 0, 2, 2)), dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IPv4(10, 0, 2, 2))))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range opts {
		m.UpdateOption(o)
	}
	return &nclient4.Lease{ACK: m}
}

// TestLeaseFrom reads an ACK: T1 and T2 default to 1/2 and 7/8 of the
// lease (RFC 2131 4.4.5), a server's own values win, an infinite lease
// is held forever, and an ACK without a lease time is refused.
func TestLeaseFrom(t *testing.T) {
	start := time.Unix(1000, 0)
	l, err := leaseFrom(ack(t,
		dhcpv4.OptSubnetMask(net.CIDRMask(16, 32)), dhcpv4.OptRouter(net.IPv4(10, 0, 2, 2)),
		dhcpv4.OptDNS(net.IPv4(10, 0, 2, 3), net.IPv4(1, 1, 1, 1)), dhcpv4.OptIPAddressLeaseTime(time.Hour)), start)
	if err != nil {
		t.Fatal(err)
	}
	want := Lease{Addr: netip.MustParsePrefix("10.0.2.15/16"), Gateway: netip.MustParseAddr("10.0.2.2"),
		DNS:    []netip.Addr{netip.MustParseAddr("10.0.2.3"), netip.MustParseAddr("1.1.1.1")},
		Server: netip.MustParseAddr("10.0.2.2"), Time: time.Hour, Renew: 30 * time.Minute, Rebind: 52*time.Minute + 30*time.Second,
		Start: start}
	l.ack = nil
	if l.String() != want.String() || l.Start != start || l.Server != want.Server || l.Time != want.Time || l.Renew != want.Renew || l.Rebind != want.Rebind {
		t.Fatalf("lease %+v, want %+v", l, want)
	}
	if got := l.lifetime(start.Add(10 * time.Minute)); got != 3000 {
		t.Errorf("lifetime 10 minutes in = %d, want 3000", got)
	}

	l, _ = leaseFrom(ack(t, dhcpv4.OptIPAddressLeaseTime(time.Hour),
		dhcpv4.Option{Code: dhcpv4.OptionRenewTimeValue, Value: dhcpv4.Duration(10 * time.Second)},
		dhcpv4.Option{Code: dhcpv4.OptionRebindingTimeValue, Value: dhcpv4.Duration(20 * time.Second)}), start)
	if l.Renew != 10*time.Second || l.Rebind != 20*time.Second || l.Addr.Bits() != 24 {
		t.Errorf("server's T1/T2: %+v", l)
	}
	l, _ = leaseFrom(ack(t, dhcpv4.OptIPAddressLeaseTime(infinite)), start)
	if l.Time != 0 || l.lifetime(start.Add(1000*time.Hour)) != 0 {
		t.Errorf("infinite lease: %+v", l)
	}
	if _, err := leaseFrom(ack(t), start); err == nil {
		t.Error("ACK without lease time accepted")
	}
}
