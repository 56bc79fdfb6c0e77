package netconf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"
)

// DHCP message types (option 53).
const (
	msgDiscover = 1
	msgOffer    = 2
	msgRequest  = 3
	msgAck      = 5
	msgNak      = 6
)

// DHCP options used here.
const (
	optSubnet    = 1
	optRouter    = 3
	optDNS       = 6
	optHostname  = 12
	optRequested = 50
	optLease     = 51
	optType      = 53
	optServer    = 54
	optParams    = 55
	optEnd       = 255
)

var magicCookie = []byte{99, 130, 83, 99}

// Lease is what a DHCP server granted.
type Lease struct {
	Addr    netip.Prefix
	Gateway netip.Addr
	DNS     []netip.Addr
	Server  netip.Addr
	Time    time.Duration
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
		s += " lease " + l.Time.String()
	}
	return s
}

// message builds a client message (RFC 2131) with the broadcast flag set,
// so that servers answer to the broadcast address: the client has no
// address to receive unicast on yet.
func message(typ byte, xid uint32, mac net.HardwareAddr, requested, server netip.Addr) []byte {
	b := make([]byte, 240, 300)
	b[0], b[1], b[2] = 1, 1, 6 // BOOTREQUEST, ethernet, MAC length
	binary.BigEndian.PutUint32(b[4:], xid)
	binary.BigEndian.PutUint16(b[10:], 0x8000)
	copy(b[28:], mac)
	copy(b[236:], magicCookie)
	b = append(b, optType, 1, typ)
	if requested.IsValid() {
		a := requested.As4()
		b = append(b, optRequested, 4, a[0], a[1], a[2], a[3])
	}
	if server.IsValid() {
		a := server.As4()
		b = append(b, optServer, 4, a[0], a[1], a[2], a[3])
	}
	b = append(b, optParams, 4, optSubnet, optRouter, optDNS, optLease)
	return append(b, optEnd)
}

// reply is a parsed server message.
type reply struct {
	typ     byte
	xid     uint32
	yiaddr  netip.Addr
	options map[byte][]byte
}

func parseReply(b []byte) (reply, error) {
	if len(b) < 240 || b[0] != 2 || !bytes.Equal(b[236:240], magicCookie) {
		return reply{}, errors.New("not a DHCP reply")
	}
	r := reply{
		xid:     binary.BigEndian.Uint32(b[4:]),
		yiaddr:  netip.AddrFrom4([4]byte(b[16:20])),
		options: map[byte][]byte{},
	}
	opts := b[240:]
	for len(opts) > 0 {
		code := opts[0]
		if code == optEnd {
			break
		}
		if code == 0 {
			opts = opts[1:]
			continue
		}
		if len(opts) < 2 || len(opts) < 2+int(opts[1]) {
			return reply{}, errors.New("truncated DHCP option")
		}
		r.options[code] = opts[2 : 2+int(opts[1])]
		opts = opts[2+int(opts[1]):]
	}
	if t := r.options[optType]; len(t) == 1 {
		r.typ = t[0]
	}
	return r, nil
}

func (r reply) addr(code byte) netip.Addr {
	if v := r.options[code]; len(v) >= 4 {
		return netip.AddrFrom4([4]byte(v[:4]))
	}
	return netip.Addr{}
}

func (r reply) lease() (Lease, error) {
	bits := 24
	if m := r.options[optSubnet]; len(m) == 4 {
		b, err := maskBits([4]byte(m))
		if err != nil {
			return Lease{}, err
		}
		bits = b
	}
	l := Lease{Addr: netip.PrefixFrom(r.yiaddr, bits), Gateway: r.addr(optRouter), Server: r.addr(optServer)}
	for v := r.options[optDNS]; len(v) >= 4; v = v[4:] {
		l.DNS = append(l.DNS, netip.AddrFrom4([4]byte(v[:4])))
	}
	if v := r.options[optLease]; len(v) == 4 {
		l.Time = time.Duration(binary.BigEndian.Uint32(v)) * time.Second
	}
	return l, nil
}

// exchange runs DISCOVER/OFFER/REQUEST/ACK over conn (a socket bound to
// port 68 on the interface); send delivers a message to the servers.
func exchange(conn net.PacketConn, send func([]byte) error, mac net.HardwareAddr, xid uint32, deadline time.Time) (Lease, error) {
	offer, err := ask(conn, send, message(msgDiscover, xid, mac, netip.Addr{}, netip.Addr{}), xid, msgOffer, deadline)
	if err != nil {
		return Lease{}, fmt.Errorf("dhcp discover: %w", err)
	}
	ack, err := ask(conn, send, message(msgRequest, xid, mac, offer.yiaddr, offer.addr(optServer)), xid, msgAck, deadline)
	if err != nil {
		return Lease{}, fmt.Errorf("dhcp request: %w", err)
	}
	return ack.lease()
}

// ask sends msg every second until a reply of type want (or a NAK) with xid
// arrives, or deadline passes.
func ask(conn net.PacketConn, send func([]byte) error, msg []byte, xid uint32, want byte, deadline time.Time) (reply, error) {
	buf := make([]byte, 1500)
	for time.Now().Before(deadline) {
		if err := send(msg); err != nil {
			return reply{}, err
		}
		retry := time.Now().Add(time.Second)
		if deadline.Before(retry) {
			retry = deadline
		}
		_ = conn.SetReadDeadline(retry)
		for {
			n, _, err := conn.ReadFrom(buf)
			if err != nil {
				break // timeout: send again
			}
			r, err := parseReply(buf[:n])
			if err != nil || r.xid != xid {
				continue
			}
			if r.typ == msgNak {
				return reply{}, errors.New("server refused (NAK)")
			}
			if r.typ == want {
				return r, nil
			}
		}
	}
	return reply{}, errors.New("no answer from a DHCP server")
}
