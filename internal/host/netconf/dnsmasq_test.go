package netconf

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// inNetns runs the calling test again in a network namespace of its own
// (unshare --user --map-root-user --net: no privileges needed) and
// reports whether this process is the one inside. The outer test passes
// only if the inner one ran and passed.
func inNetns(t *testing.T) bool {
	t.Helper()
	const env = "BULKHEAD_NETNS_TEST"
	if os.Getenv(env) == t.Name() {
		return true
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Fatalf("this test needs unshare (util-linux): %v", err)
	}
	cmd := exec.Command(unshare, "--user", "--map-root-user", "--net", os.Args[0],
		"-test.run", "^"+t.Name()+"$", "-test.v", "-test.count=1", "-test.timeout=5m")
	cmd.Env = append(os.Environ(), env+"="+t.Name())
	out, err := cmd.CombinedOutput()
	t.Logf("in a new network namespace:\n%s", out)
	if err != nil || !bytes.Contains(out, []byte("--- PASS: "+t.Name())) {
		t.Fatalf("the test in a new network namespace failed: %v", err)
	}
	return false
}

// serverNetns makes a second network namespace for the DHCP server (a
// server in the client's own namespace would be talking to a local
// address), moves srv0 into it, and returns a netlink handle on it and
// the path of the namespace.
func serverNetns(t *testing.T) (*netlink.Handle, string) {
	t.Helper()
	holder := exec.Command("unshare", "--net", "sleep", "infinity")
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { holder.Process.Kill(); holder.Wait() })
	path := fmt.Sprintf("/proc/%d/ns/net", holder.Process.Pid)
	var ns netns.NsHandle
	for start := time.Now(); ; time.Sleep(10 * time.Millisecond) {
		self, _ := netns.Get()
		var err error
		ns, err = netns.GetFromPath(path)
		if err == nil && !ns.Equal(self) { // unshare has moved the sleeper
			self.Close()
			break
		}
		self.Close()
		if time.Since(start) > 5*time.Second {
			t.Fatalf("no network namespace at %s: %v", path, err)
		}
	}
	t.Cleanup(func() { ns.Close() })
	srv, err := netlink.LinkByName("srv0")
	if err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetNsFd(srv, int(ns)); err != nil {
		t.Fatal(err)
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	for _, name := range []string{"lo", "srv0"} {
		l, err := h.LinkByName(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.LinkSetUp(l); err != nil {
			t.Fatal(err)
		}
	}
	return h, path
}

// dnsmasq runs Debian's dnsmasq in the server's namespace as the DHCP
// server on srv0 with the address srv, a two-minute lease (dnsmasq's
// shortest) and T1/T2 of 4 and 8 seconds; stop ends it.
func dnsmasq(t *testing.T, h *netlink.Handle, ns, dir string, srv netip.Prefix) (stop func()) {
	t.Helper()
	bin, err := exec.LookPath("dnsmasq")
	if err != nil {
		t.Fatalf("this test needs dnsmasq (scripts/install-deps installs dnsmasq-base): %v", err)
	}
	link, err := h.LinkByName("srv0")
	if err != nil {
		t.Fatal(err)
	}
	addrs, _ := h.AddrList(link, netlink.FAMILY_V4)
	for _, a := range addrs {
		h.AddrDel(link, &a)
	}
	if err := h.AddrAdd(link, &netlink.Addr{IPNet: &net.IPNet{IP: srv.Addr().AsSlice(), Mask: net.CIDRMask(srv.Bits(), 32)}}); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	cmd := exec.Command("nsenter", "--net="+ns, bin, "--keep-in-foreground", "--conf-file=/dev/null", "--port=0",
		"--user=root", "--group=", // stay root: a user namespace maps no other ids
		"--pid-file="+filepath.Join(dir, "pid"), "--dhcp-leasefile="+filepath.Join(dir, "leases"),
		"--log-facility=-", "--log-dhcp", "--bind-interfaces", "--interface=srv0", "--dhcp-authoritative",
		"--dhcp-range=10.77.0.10,10.77.0.20,255.255.255.0,2m",
		"--dhcp-option=option:dns-server,10.77.0.53",
		"--dhcp-option=option:T1,4", "--dhcp-option=option:T2,8")
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cmd.Process.Kill()
		cmd.Wait()
		t.Logf("dnsmasq on %s:\n%s", srv, log.String())
	}
	t.Cleanup(stop)
	exited := make(chan struct{})
	go func() { cmd.Process.Wait(); close(exited) }()
	select {
	case <-exited:
		t.Fatalf("dnsmasq exited:\n%s", log.String())
	case <-time.After(300 * time.Millisecond): // it has bound its socket
	}
	return stop
}

// validLft is the valid lifetime the kernel holds for addr on name.
func validLft(t *testing.T, name string, addr netip.Prefix) int {
	t.Helper()
	link, err := netlink.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	addrs, err := netlink.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if p, _ := netip.AddrFromSlice(a.IP.To4()); p == addr.Addr() {
			return a.ValidLft
		}
	}
	t.Fatalf("%s has no address %s (has %v)", name, addr, addrs)
	return 0
}

// TestDHCPAgainstDnsmasq holds a lease from a real DHCP server on a veth
// pair: the first lease sets the address with the lease's lifetime; at T1
// the client renews with the server that granted it; when that server is
// gone, at T2 it rebinds with whichever server answers.
func TestDHCPAgainstDnsmasq(t *testing.T) {
	if !inNetns(t) {
		return
	}
	lo, _ := netlink.LinkByName("lo")
	netlink.LinkSetUp(lo)
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "cli0"}, PeerName: "srv0"}
	if err := netlink.LinkAdd(veth); err != nil {
		t.Fatal(err)
	}
	h, ns := serverNetns(t)
	dir := t.TempDir()
	stopFirst := dnsmasq(t, h, ns, dir, netip.MustParsePrefix("10.77.0.1/24"))

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	upCtx, upCancel := context.WithTimeout(ctx, 15*time.Second)
	lease, dev, err := Up(upCtx, Config{Mode: DHCP, Device: "cli0"})
	upCancel()
	if err != nil || dev != "cli0" {
		t.Fatalf("Up: %v (%s)", err, dev)
	}
	t.Logf("first lease: %s", lease)
	if !netip.MustParsePrefix("10.77.0.0/24").Contains(lease.Addr.Addr()) || lease.Addr.Bits() != 24 ||
		lease.Gateway != netip.MustParseAddr("10.77.0.1") || lease.Server != netip.MustParseAddr("10.77.0.1") ||
		len(lease.DNS) != 1 || lease.DNS[0] != netip.MustParseAddr("10.77.0.53") ||
		lease.Time != 2*time.Minute || lease.Renew != 4*time.Second || lease.Rebind != 8*time.Second {
		t.Fatalf("first lease %s from %s, T1 %s, T2 %s", lease, lease.Server, lease.Renew, lease.Rebind)
	}
	if v := validLft(t, "cli0", lease.Addr); v < 100 || v > 120 {
		t.Fatalf("address valid lifetime %d s, want the lease's 120", v)
	}

	type event struct {
		l   Lease
		err error
	}
	events := make(chan event, 16)
	go Keep(ctx, "cli0", lease, func(l Lease, err error) { events <- event{l, err} })
	next := func(what string) Lease {
		t.Helper()
		select {
		case e := <-events:
			if e.err != nil {
				t.Fatalf("%s: %v", what, e.err)
			}
			return e.l
		case <-time.After(20 * time.Second):
			t.Fatalf("%s: nothing in 20s", what)
		}
		return Lease{}
	}

	time.Sleep(2 * time.Second) // let the lifetime fall, to see the renewal restore it
	renewed := next("renewal at T1")
	if at := renewed.Start.Sub(lease.Start); at < 4*time.Second || at > 6*time.Second {
		t.Errorf("renewed %s after the first lease, want T1 (4s)", at)
	}
	if renewed.Addr != lease.Addr || renewed.Server != lease.Server {
		t.Fatalf("renewal changed the lease: %s from %s", renewed, renewed.Server)
	}
	if v := validLft(t, "cli0", renewed.Addr); v < 118 {
		t.Fatalf("after renewal the address has %d s left, want the new lease's 120", v)
	}

	// The granting server goes away; another, at another address and with
	// the same lease database, is the only one left to answer.
	stopFirst()
	dnsmasq(t, h, ns, dir, netip.MustParsePrefix("10.77.0.2/24"))
	last := renewed
	for {
		l := next("rebinding at T2")
		if l.Server == netip.MustParseAddr("10.77.0.1") {
			last = l // a renewal that slipped in before the server stopped
			continue
		}
		if at := l.Start.Sub(last.Start); at < 8*time.Second || at > 10*time.Second {
			t.Errorf("rebound %s after the last lease, want T2 (8s)", at)
		}
		if l.Server != netip.MustParseAddr("10.77.0.2") || l.Addr != lease.Addr {
			t.Fatalf("rebound lease %s from %s", l, l.Server)
		}
		if v := validLft(t, "cli0", l.Addr); v < 118 {
			t.Fatalf("after rebinding the address has %d s left", v)
		}
		t.Logf("rebound: %s from %s", l, l.Server)
		break
	}
	if out, _ := os.ReadFile(filepath.Join(dir, "leases")); !strings.Contains(string(out), lease.Addr.Addr().String()) {
		t.Errorf("dnsmasq's lease file does not hold %s: %q", lease.Addr.Addr(), out)
	}
}
