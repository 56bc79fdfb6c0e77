package containers

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Prepare does what LinuxKit's init does between creating a container's
// process (pid) and starting it: create or move its network interfaces, and
// bind its namespaces to the paths runtime.json names. It attempts every
// step and returns all failures.
func Prepare(pid uint32, r Runtime) error {
	var errs []error
	for _, i := range r.Interfaces {
		if err := iface(int(pid), i); err != nil {
			errs = append(errs, err)
		}
	}
	for _, b := range []struct{ ns, path string }{
		{"cgroup", r.BindNS.Cgroup}, {"ipc", r.BindNS.Ipc}, {"mnt", r.BindNS.Mnt},
		{"net", r.BindNS.Net}, {"pid", r.BindNS.Pid}, {"user", r.BindNS.User}, {"uts", r.BindNS.Uts},
	} {
		if b.path == "" {
			continue
		}
		if err := bindNS(int(pid), b.ns, b.path); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func iface(pid int, i Interface) error {
	if i.Name == "" {
		return errors.New("runtime interface without a name")
	}
	if i.Peer != "" && i.Add == "" {
		i.Add = "veth"
	}
	if i.Add == "" {
		link, err := netlink.LinkByName(i.Name)
		if err != nil {
			return fmt.Errorf("finding interface %s: %w", i.Name, err)
		}
		return moveTo(link, pid)
	}
	// A veth pair, or any link created in the root namespace, is moved after.
	inRoot := i.CreateInRoot || i.Add == "veth"
	attrs := netlink.LinkAttrs{Name: i.Name}
	if !inRoot {
		attrs.Namespace = netlink.NsPid(pid)
	}
	var link netlink.Link = &netlink.GenericLink{LinkAttrs: attrs, LinkType: i.Add}
	if i.Add == "veth" {
		if i.Peer == "" {
			return fmt.Errorf("veth %s needs a peer", i.Name)
		}
		link = &netlink.Veth{LinkAttrs: attrs, PeerName: i.Peer}
	}
	if err := netlink.LinkAdd(link); err != nil {
		return fmt.Errorf("adding %s interface %s: %w", i.Add, i.Name, err)
	}
	if inRoot {
		return moveTo(link, pid)
	}
	return nil
}

func moveTo(link netlink.Link, pid int) error {
	if err := netlink.LinkSetNsPid(link, pid); err != nil {
		return fmt.Errorf("moving interface %s into the container: %w", link.Attrs().Name, err)
	}
	return nil
}

func bindNS(pid int, ns, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("binding %s namespace: %w", ns, err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o444)
	if err != nil {
		return fmt.Errorf("binding %s namespace: %w", ns, err)
	}
	f.Close()
	src := fmt.Sprintf("/proc/%d/ns/%s", pid, ns)
	if err := unix.Mount(src, path, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("binding %s namespace at %s: %w", ns, path, err)
	}
	return nil
}
