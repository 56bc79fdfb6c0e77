package rootfs

import (
	"fmt"

	"github.com/bulkhead-dev/bulkhead/builder/resolve"
)

// fixup says which of LinuxKit's image fix-ups an unpacked image gets.
type fixup uint8

const (
	fixNone      fixup = iota // kernel images, volumes: content as is
	fixContainer              // onboot, onshutdown, services
	fixInit                   // init images: resolv.conf points into /run
)

// resolvconfSymlink is where init images' etc/resolv.conf points: a
// writable place the network set-up fills in at run time (LinuxKit).
const resolvconfSymlink = "/run/resolvconf/resolv.conf"

// hostsContent replaces every image's etc/hosts (LinuxKit).
const hostsContent = `127.0.0.1       localhost
::1     localhost ip6-localhost ip6-loopback
fe00::0 ip6-localnet
ff00::0 ip6-mcastprefix
ff02::1 ip6-allnodes
ff02::2 ip6-allrouters
`

// noResolvContent replaces a container image's etc/resolv.conf (LinuxKit).
const noResolvContent = "\n# no resolv.conf configured\n"

// excluded paths are dropped from unpacked images: Docker puts them in
// every exported image (LinuxKit's exclude list). dev/pts and dev/shm come
// back as empty directories.
var excluded = []string{".dockerenv", "Dockerfile", "dev/console", "dev/pts", "dev/shm", "etc/hostname"}

// touched are the directories every unpacked image must have.
var touched = []string{"dev", "dev/pts", "dev/shm", "etc", "proc", "sys"}

// flatten applies every layer of img, bottom first, to a new tree and
// applies the fix-ups fx asks for.
func flatten(img *resolve.Image, origin string, fx fixup, o *options) (*Tree, error) {
	t := New()
	t.entries[""].ModTime = o.epoch
	lo := *o
	lo.origin = origin
	for _, l := range img.Layers {
		if err := applyLayerFile(t, "", l, &lo); err != nil {
			return nil, err
		}
	}
	if fx != fixNone {
		applyFixups(t, fx, o.epoch)
	}
	return t, nil
}

// applyLayerFile is ApplyLayer with options already parsed.
func applyLayerFile(t *Tree, prefix string, l resolve.Layer, o *options) error {
	f, err := l.Open()
	if err != nil {
		return fmt.Errorf("opening layer %s: %w", layerName(l), err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("opening layer %s: %w", layerName(l), err)
	}
	return applyTar(t, prefix, tarSource{blob: l.Path, r: f, size: st.Size(), name: "layer " + layerName(l)}, o)
}

// applyFixups does to a flattened image what LinuxKit does while exporting
// one: drop Docker's artefacts, give etc/hosts standard content, replace
// etc/resolv.conf, and make sure the mount points the runtime needs exist.
// What it generates is bulkhead's (Origin "bulkhead").
func applyFixups(t *Tree, fx fixup, epoch int64) {
	for _, p := range excluded {
		t.Remove(p)
	}
	gen := func(p string, k Kind, mode uint32) *Entry {
		return &Entry{Path: p, Kind: k, Mode: mode, ModTime: epoch, Origin: OriginBulkhead}
	}
	for _, d := range touched {
		if e := t.entries[d]; e == nil || e.Kind != KindDir {
			t.Put(gen(d, KindDir, 0o755))
		}
	}
	if t.entries["etc/mtab"] == nil {
		m := gen("etc/mtab", KindSymlink, 0o777)
		m.Link = "/proc/mounts"
		t.Put(m)
	}
	t.Put(replaced(t.entries["etc/hosts"], gen("etc/hosts", KindFile, 0o644), hostsContent))
	if fx == fixInit {
		r := gen("etc/resolv.conf", KindSymlink, 0o777)
		r.Link = resolvconfSymlink
		t.Put(r)
		return
	}
	t.Put(replaced(t.entries["etc/resolv.conf"], gen("etc/resolv.conf", KindFile, 0o644), noResolvContent))
}

// replaced returns def holding content, keeping the mode and owner of the
// image's own regular file if there was one.
func replaced(old, def *Entry, content string) *Entry {
	if old != nil && old.Kind == KindFile {
		def.Mode, def.UID, def.GID = old.Mode, old.UID, old.GID
	}
	def.Content = Content{Data: []byte(content)}
	def.Size = int64(len(content))
	return def
}
