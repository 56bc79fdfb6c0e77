package netconf

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
)

// Lease is what a DHCP server granted (or the static configuration, with
// no lease time: an address held forever).
type Lease struct {
	Addr    netip.Prefix
	Gateway netip.Addr
	DNS     []netip.Addr
	Server  netip.Addr
	Time    time.Duration // how long the address is ours; 0: forever
	Renew   time.Duration // T1: when to ask the granting server to extend it
	Rebind  time.Duration // T2: when to ask any server
	Start   time.Time     // when the request that won it was sent

	ack *nclient4.Lease // the server's messages, to renew from
}

// String describes the lease for the log.
func (l Lease) String() string {
	s := l.Addr.String()
	if l.Gateway.IsValid() {
		s += " via " + l.Gateway.String()
	}
	for _, d := range l.DNS {
		s += " dns " + d.String()
	}
	if l.Time > 0 {
		s += fmt.Sprintf(" lease %s (renew %s, rebind %s)", l.Time, l.Renew, l.Rebind)
	}
	return s
}

// infinite is RFC 2131's lease time that never ends (0xffffffff seconds).
const infinite = math.MaxUint32 * time.Second

// leaseFrom reads the lease an ACK grants; start is when it was asked for.
func leaseFrom(nl *nclient4.Lease, start time.Time) (Lease, error) {
	ack := nl.ACK
	addr, ok := netip.AddrFromSlice(ack.YourIPAddr.To4())
	if !ok || addr.IsUnspecified() {
		return Lease{}, fmt.Errorf("dhcp: server %s granted no address", ack.ServerIdentifier())
	}
	bits := 24
	if m := ack.SubnetMask(); m != nil {
		ones, size := m.Size()
		if size != 32 {
			return Lease{}, fmt.Errorf("dhcp: bad subnet mask %s", m)
		}
		bits = ones
	}
	l := Lease{Addr: netip.PrefixFrom(addr, bits), Start: start, ack: nl}
	l.Server, _ = netip.AddrFromSlice(ack.ServerIdentifier().To4())
	if r := ack.Router(); len(r) > 0 {
		l.Gateway, _ = netip.AddrFromSlice(r[0].To4())
	}
	for _, d := range ack.DNS() {
		if a, ok := netip.AddrFromSlice(d.To4()); ok {
			l.DNS = append(l.DNS, a)
		}
	}
	if l.Time = ack.IPAddressLeaseTime(0); l.Time <= 0 {
		return Lease{}, errors.New("dhcp: the server's answer has no lease time")
	}
	if l.Time >= infinite {
		l.Time = 0
		return l, nil
	}
	// RFC 2131 4.4.5: T1 defaults to half the lease, T2 to 7/8 of it.
	l.Rebind = min(ack.IPAddressRebindingTime(l.Time*7/8), l.Time)
	l.Renew = min(ack.IPAddressRenewalTime(l.Time/2), l.Rebind)
	return l, nil
}

// lifetime is how many seconds of the lease are left at now, for the
// address's valid and preferred lifetimes; 0 means forever.
func (l Lease) lifetime(now time.Time) int {
	if l.Time == 0 {
		return 0
	}
	return max(int(l.Start.Add(l.Time).Sub(now)/time.Second), 1)
}

// dhcpOpts are the client options for every exchange: a one-second first
// timeout, doubled on each retry, until the caller's context ends.
func dhcpOpts(extra ...nclient4.ClientOpt) []nclient4.ClientOpt {
	return append([]nclient4.ClientOpt{nclient4.WithTimeout(time.Second), nclient4.WithRetry(-1)}, extra...)
}

// acquire runs DISCOVER/OFFER/REQUEST/ACK on the interface name through a
// raw socket (the interface has no address yet) until ctx ends.
func acquire(ctx context.Context, name string) (Lease, error) {
	if err := waitRandom(ctx); err != nil {
		return Lease{}, fmt.Errorf("dhcp on %s: waiting for the kernel's random numbers: %w", name, err)
	}
	c, err := nclient4.New(name, dhcpOpts()...)
	if err != nil {
		return Lease{}, fmt.Errorf("dhcp on %s: %w", name, err)
	}
	defer c.Close()
	offer, err := c.DiscoverOffer(ctx)
	if err != nil {
		return Lease{}, fmt.Errorf("dhcp on %s: %w", name, err)
	}
	start := time.Now() // RFC 2131 4.4.1: the lease runs from the REQUEST
	nl, err := c.RequestFromOffer(ctx, offer)
	if err != nil {
		return Lease{}, fmt.Errorf("dhcp on %s: %w", name, err)
	}
	return leaseFrom(nl, start)
}

// renew asks the server that granted l, by unicast from the leased
// address, to extend it (RENEWING, RFC 2131 4.4.5).
func renew(ctx context.Context, name string, l Lease) (Lease, error) {
	c, err := nclient4.New(name, dhcpOpts(
		nclient4.WithUnicast(&net.UDPAddr{IP: l.Addr.Addr().AsSlice(), Port: nclient4.ClientPort}),
		nclient4.WithServerAddr(&net.UDPAddr{IP: l.Server.AsSlice(), Port: nclient4.ServerPort}))...)
	if err != nil {
		return Lease{}, fmt.Errorf("dhcp renew on %s: %w", name, err)
	}
	defer c.Close()
	start := time.Now()
	nl, err := c.Renew(ctx, l.ack)
	if err != nil {
		return Lease{}, fmt.Errorf("dhcp renew on %s: %w", name, err)
	}
	return leaseFrom(nl, start)
}

// rebind asks any server, by broadcast, to extend l (REBINDING).
func rebind(ctx context.Context, name string, l Lease) (Lease, error) {
	c, err := nclient4.New(name, dhcpOpts()...)
	if err != nil {
		return Lease{}, fmt.Errorf("dhcp rebind on %s: %w", name, err)
	}
	defer c.Close()
	req, err := dhcpv4.NewRenewFromAck(l.ack.ACK, dhcpv4.WithOption(dhcpv4.OptMaxMessageSize(nclient4.MaxMessageSize)))
	if err != nil {
		return Lease{}, fmt.Errorf("dhcp rebind on %s: %w", name, err)
	}
	start := time.Now()
	ack, err := c.SendAndRead(ctx, nclient4.DefaultServers, req,
		nclient4.IsMessageType(dhcpv4.MessageTypeAck, dhcpv4.MessageTypeNak))
	if err != nil {
		return Lease{}, fmt.Errorf("dhcp rebind on %s: %w", name, err)
	}
	if ack.MessageType() == dhcpv4.MessageTypeNak {
		return Lease{}, fmt.Errorf("dhcp rebind on %s: %w", name, &nclient4.ErrNak{Offer: l.ack.Offer, Nak: ack})
	}
	return leaseFrom(&nclient4.Lease{Offer: l.ack.Offer, ACK: ack, CreationTime: time.Now()}, start)
}

// extend keeps l alive: it renews from T1 until T2, then rebinds until the
// lease ends. A server's NAK ends the lease at once.
func extend(ctx context.Context, name string, l Lease) (Lease, error) {
	if err := sleepUntil(ctx, l.Start.Add(l.Renew)); err != nil {
		return Lease{}, err
	}
	n, err := until(ctx, l.Start.Add(l.Rebind), func(ctx context.Context) (Lease, error) { return renew(ctx, name, l) })
	var nak *nclient4.ErrNak
	if err == nil || errors.As(err, &nak) || ctx.Err() != nil {
		return n, err
	}
	return until(ctx, l.Start.Add(l.Time), func(ctx context.Context) (Lease, error) { return rebind(ctx, name, l) })
}

// until asks, again and again (a second apart when an attempt fails at
// once, say with no route to the server), until an answer, a NAK, or the
// deadline.
func until(ctx context.Context, deadline time.Time, ask func(context.Context) (Lease, error)) (Lease, error) {
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	for {
		l, err := ask(ctx)
		var nak *nclient4.ErrNak
		if err == nil || errors.As(err, &nak) || ctx.Err() != nil {
			return l, err
		}
		if sleepUntil(ctx, time.Now().Add(time.Second)) != nil {
			return l, err
		}
	}
}

func sleepUntil(ctx context.Context, t time.Time) error {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}
