package rootfs

import (
	"archive/tar"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulkhead-dev/bulkhead/builder/config"
	"github.com/bulkhead-dev/bulkhead/builder/resolve"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

const testSpec = `kernel:
  image: example.org/kernel:1
  cmdline: console=ttyS0
  ucode: intel-ucode.cpio
init:
  - example.org/init:1
  - example.org/runc:1
onboot:
  - name: setup
    image: example.org/web:1
    command: ["/usr/bin/web", "--setup"]
services:
  - name: web
    image: example.org/web:1
    readonly: true
    uid: www
    gid: wwwgrp
  - name: ro
    image: example.org/ro:1
    readonly: true
volumes:
  - name: blank
  - name: data
    image: example.org/data:1
files:
  - path: etc/motd
    contents: hello
  - path: etc/ssh/sshd_config
    contents: x
    mode: "0644"
  - path: secrets/key
    contents: k
  - path: /bin/init
    contents: "#!override"
    mode: "0755"
  - path: var/lib/state
    directory: true
  - path: etc/linuxkit-config
    metadata: yaml
  - path: etc/link
    symlink: /etc/motd
  - path: etc/from-source
    source: src.txt
  - path: etc/optional
    source: missing.txt
    optional: true
  - path: etc/owned
    contents: o
    uid: web
    gid: 7
`

const bzImage = "MZ\x00fake-bzImage\xff\xfe"

// testImages builds the images testSpec names, each from real layer files.
func testImages(t *testing.T) map[string]*resolve.Image {
	t.Helper()
	store := t.TempDir()
	img := func(ref string, cfg v1.Config, layers ...[]tf) *resolve.Image {
		i := &resolve.Image{Ref: ref, Name: ref, Config: &v1.ConfigFile{Config: cfg}}
		for _, l := range layers {
			i.Layers = append(i.Layers, writeLayer(t, store, tarBytes(t, l...)))
		}
		i.Digest = v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("ab", 32)}
		return i
	}
	modules := tarBytes(t,
		dir("lib/", 0o755), dir("lib/modules/", 0o755), dir("lib/modules/6.1.0/", 0o755),
		reg("lib/modules/6.1.0/modules.dep", "kernel/virtio.ko:\n", 0o644),
		reg("lib/modules/6.1.0/kernel/virtio.ko", strings.Repeat("\x7fELF-module", 300), 0o644),
		hardlink("lib/modules/6.1.0/kernel/virtio-alias.ko", "lib/modules/6.1.0/kernel/virtio.ko"),
	)
	dev := tf{hdr: tarHeaderChar("dev/console", 5, 1)}
	return map[string]*resolve.Image{
		"example.org/kernel:1": img("example.org/kernel:1", v1.Config{},
			[]tf{reg("kernel", bzImage, 0o644), reg("kernel.tar", string(modules), 0o644), reg("intel-ucode.cpio", "ucode", 0o644)}),
		"example.org/init:1": img("example.org/init:1", v1.Config{},
			[]tf{dir("bin/", 0o755), reg("bin/init", "#!init", 0o755), dir("etc/", 0o755), reg("etc/hosts", "10.0.0.1 evil\n", 0o600),
				reg("etc/hostname", "builder", 0o644), reg(".dockerenv", "", 0o644), dir("dev/", 0o755), dev,
				reg("etc/resolv.conf", "nameserver 8.8.8.8\n", 0o644), reg("etc/old", "old", 0o644)},
			[]tf{reg("etc/.wh.old", "", 0o644)}),
		"example.org/runc:1": img("example.org/runc:1", v1.Config{},
			[]tf{reg("usr/bin/runc", "runc", 0o755)}),
		"example.org/web:1": img("example.org/web:1", v1.Config{Cmd: []string{"/usr/bin/web"}},
			[]tf{reg("etc/passwd", "root:x:0:0::/root:/bin/sh\nwww:x:33:34::/var/www:/bin/false\n", 0o644),
				reg("etc/group", "root:x:0:\nwwwgrp:x:35:www\n", 0o644), reg("usr/bin/web", "web", 0o755)}),
		"example.org/ro:1": img("example.org/ro:1", v1.Config{Cmd: []string{"/ro"}},
			[]tf{reg("ro", "ro", 0o755), reg("etc/hosts", "::1 x\n", 0o640)}),
		"example.org/data:1": img("example.org/data:1", v1.Config{},
			[]tf{dir("data/", 0o755), reg("data/x", "x", 0o644)}),
	}
}

func tarHeaderChar(name string, major, minor int64) tar.Header {
	return tar.Header{Name: name, Typeflag: tar.TypeChar, Mode: 0o600, Devmajor: major, Devminor: minor}
}

// loadSpec writes testSpec (and the source file it reads) to a directory
// and parses it.
func loadSpec(t *testing.T, yaml string) *config.Spec {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "host.yml")
	if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "src.txt"), []byte("from the build machine\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	spec, err := config.Load(p)
	if err != nil {
		t.Fatalf("loading spec: %v", err)
	}
	return spec
}

func TestAssemble(t *testing.T) {
	spec := loadSpec(t, testSpec)
	h, err := Assemble(context.Background(), spec, testImages(t), WithEpoch(1600000000))
	if err != nil {
		t.Fatal(err)
	}
	tr := h.Tree
	get := func(p string, kind Kind) *Entry {
		t.Helper()
		e := tr.Get(p)
		if e == nil {
			t.Fatalf("%s missing", p)
		}
		if e.Kind != kind {
			t.Fatalf("%s: kind %d, want %d", p, e.Kind, kind)
		}
		return e
	}
	absent := func(ps ...string) {
		t.Helper()
		for _, p := range ps {
			if tr.Get(p) != nil {
				t.Errorf("%s present", p)
			}
		}
	}

	t.Run("kernel", func(t *testing.T) {
		if h.Kernel == nil || readAll(t, h.Kernel) != bzImage {
			t.Fatalf("kernel = %+v", h.Kernel)
		}
		if h.Ucode == nil || readAll(t, h.Ucode) != "ucode" {
			t.Errorf("ucode = %+v", h.Ucode)
		}
		if h.Cmdline != "console=ttyS0" {
			t.Errorf("cmdline %q", h.Cmdline)
		}
		absent("kernel", "kernel.tar", "intel-ucode.cpio")
		ko := get("lib/modules/6.1.0/kernel/virtio.ko", KindFile)
		if got := readAll(t, ko); got != strings.Repeat("\x7fELF-module", 300) {
			t.Errorf("module read back as %d bytes", len(got))
		}
		if ko.Origin != "example.org/kernel:1@sha256:"+strings.Repeat("ab", 32) {
			t.Errorf("module origin %q", ko.Origin)
		}
		if got := readAll(t, get("lib/modules/6.1.0/modules.dep", KindFile)); got != "kernel/virtio.ko:\n" {
			t.Errorf("modules.dep %q", got)
		}
		if l := get("lib/modules/6.1.0/kernel/virtio-alias.ko", KindHardlink); l.Link != "lib/modules/6.1.0/kernel/virtio.ko" {
			t.Errorf("alias links to %q", l.Link)
		}
	})

	t.Run("init", func(t *testing.T) {
		absent("etc/hostname", ".dockerenv", "dev/console", "etc/old")
		if e := get("bin", KindDir); e.Origin != "example.org/init:1@sha256:"+strings.Repeat("ab", 32) {
			t.Errorf("bin origin %q", e.Origin)
		}
		hosts := get("etc/hosts", KindFile)
		if hosts.Origin != OriginBulkhead {
			t.Errorf("etc/hosts origin %q", hosts.Origin)
		}
		if got := readAll(t, hosts); !strings.HasPrefix(got, "127.0.0.1       localhost\n::1     localhost ip6-localhost ip6-loopback\n") {
			t.Errorf("etc/hosts = %q", got)
		}
		if hosts.Mode != 0o644 {
			t.Errorf("etc/hosts mode %o, want the last init image's default", hosts.Mode)
		}
		if r := get("etc/resolv.conf", KindSymlink); r.Link != "/run/resolvconf/resolv.conf" {
			t.Errorf("resolv.conf -> %q", r.Link)
		}
		if m := get("etc/mtab", KindSymlink); m.Link != "/proc/mounts" {
			t.Errorf("mtab -> %q", m.Link)
		}
		for _, d := range []string{"dev", "dev/pts", "dev/shm", "proc", "sys"} {
			get(d, KindDir)
		}
		get("usr/bin/runc", KindFile)
	})

	t.Run("containers", func(t *testing.T) {
		setup := "containers/onboot/000-setup"
		get(setup+"/tmp", KindDir)
		if c := tr.Children(setup + "/rootfs"); len(c) != 0 {
			t.Errorf("overlay rootfs/ not empty: %d entries", len(c))
		}
		if got := readAll(t, get(setup+"/lower/usr/bin/web", KindFile)); got != "web" {
			t.Errorf("web = %q", got)
		}
		if got := readAll(t, get(setup+"/lower/etc/resolv.conf", KindFile)); got != "\n# no resolv.conf configured\n" {
			t.Errorf("container resolv.conf %q", got)
		}
		get(setup+"/lower/etc/hosts", KindFile)
		cfg := readSpec(t, get(setup+"/config.json", KindFile))
		if strings.Join(cfg.Process.Args, " ") != "/usr/bin/web --setup" || cfg.Root.Readonly {
			t.Errorf("setup config: args %q readonly %v", cfg.Process.Args, cfg.Root.Readonly)
		}
		rt := readRuntime(t, get(setup+"/runtime.json", KindFile))
		if len(*rt.Mounts) != 3 || (*rt.Mounts)[2].Type != "overlay" || (*rt.Mounts)[2].Options[0] != "lowerdir=/"+setup+"/lower" {
			t.Errorf("setup runtime mounts %+v", *rt.Mounts)
		}

		// same image, read-only: shares setup's root instead of a copy
		web := "containers/services/web"
		if c := tr.Children(web + "/rootfs"); len(c) != 0 {
			t.Errorf("shared web rootfs/ not empty: %d entries", len(c))
		}
		absent(web+"/lower", web+"/tmp")
		rt = readRuntime(t, get(web+"/runtime.json", KindFile))
		if m := (*rt.Mounts)[0]; m.Source != "/"+setup+"/lower" || m.Destination != "/"+web+"/rootfs" {
			t.Errorf("web rootfs mount %+v", m)
		}
		cfg = readSpec(t, get(web+"/config.json", KindFile))
		if cfg.Process.User.UID != 33 || cfg.Process.User.GID != 35 || !cfg.Root.Readonly {
			t.Errorf("web user %+v readonly %v", cfg.Process.User, cfg.Root.Readonly)
		}

		ro := "containers/services/ro"
		get(ro+"/rootfs/ro", KindFile)
		if h := get(ro+"/rootfs/etc/hosts", KindFile); h.Mode != 0o640 || !strings.HasPrefix(readAll(t, h), "127.0.0.1") {
			t.Errorf("ro etc/hosts: mode %o, %q", h.Mode, readAll(t, h))
		}
		absent(ro+"/lower", ro+"/tmp")
		rt = readRuntime(t, get(ro+"/runtime.json", KindFile))
		if m := (*rt.Mounts)[0]; m.Source != "/"+ro+"/rootfs" || m.Options[0] != "bind" {
			t.Errorf("ro rootfs mount %+v", m)
		}
	})

	t.Run("volumes", func(t *testing.T) {
		for _, d := range []string{"lower", "tmp", "merged"} {
			get("containers/volumes/blank/"+d, KindDir)
		}
		if c := tr.Children("containers/volumes/blank/lower"); len(c) != 0 {
			t.Errorf("blank volume holds %d entries", len(c))
		}
		if got := readAll(t, get("containers/volumes/data/lower/data/x", KindFile)); got != "x" {
			t.Errorf("volume file %q", got)
		}
		absent("containers/volumes/data/lower/etc/hosts") // volumes get no fix-ups
	})

	t.Run("files", func(t *testing.T) {
		check := func(p string, kind Kind, mode uint32, uid, gid int, content string) *Entry {
			t.Helper()
			e := get(p, kind)
			if e.Mode != mode || e.UID != uid || e.GID != gid {
				t.Errorf("%s: mode %o owner %d:%d, want %o %d:%d", p, e.Mode, e.UID, e.GID, mode, uid, gid)
			}
			if kind == KindFile && readAll(t, e) != content {
				t.Errorf("%s = %q, want %q", p, readAll(t, e), content)
			}
			if e.ModTime != 1600000000 {
				t.Errorf("%s mtime %d", p, e.ModTime)
			}
			return e
		}
		motd := check("etc/motd", KindFile, 0o600, 0, 0, "hello")
		if !strings.HasPrefix(motd.Origin, "spec:") || !strings.HasSuffix(motd.Origin, "host.yml:26:5") {
			t.Errorf("motd origin %q", motd.Origin)
		}
		check("etc/ssh", KindDir, 0o755, 0, 0, "")
		check("etc/ssh/sshd_config", KindFile, 0o644, 0, 0, "x")
		check("secrets", KindDir, 0o700, 0, 0, "")
		check("bin/init", KindFile, 0o755, 0, 0, "#!override")
		check("var/lib/state", KindDir, 0o700, 0, 0, "")
		if l := check("etc/link", KindSymlink, 0o600, 0, 0, ""); l.Link != "/etc/motd" {
			t.Errorf("etc/link -> %q", l.Link)
		}
		check("etc/from-source", KindFile, 0o600, 0, 0, "from the build machine\n")
		absent("etc/optional")
		check("etc/owned", KindFile, 0o600, 101, 7, "o")
		want, err := spec.YAML()
		if err != nil {
			t.Fatal(err)
		}
		check("etc/linuxkit-config", KindFile, 0o600, 0, 0, string(want))
		if e := get("etc", KindDir); e.Mode != 0o755 {
			t.Errorf("existing etc changed to %o", e.Mode)
		}
	})

	t.Run("origins and memory", func(t *testing.T) {
		_ = tr.Walk(func(e *Entry) error {
			if e.Origin == "" {
				t.Errorf("%s has no origin", e.Path)
			}
			if e.Origin != OriginBulkhead && !strings.HasPrefix(e.Origin, "spec:") && e.Kind == KindFile && e.Content.Data != nil {
				t.Errorf("%s holds image content in memory", e.Path)
			}
			return nil
		})
	})
}

func readSpec(t *testing.T, e *Entry) specs.Spec {
	t.Helper()
	var s specs.Spec
	if err := json.Unmarshal([]byte(readAll(t, e)), &s); err != nil {
		t.Fatalf("%s: %v", e.Path, err)
	}
	return s
}

func readRuntime(t *testing.T, e *Entry) config.Runtime {
	t.Helper()
	var r config.Runtime
	if err := json.Unmarshal([]byte(readAll(t, e)), &r); err != nil {
		t.Fatalf("%s: %v", e.Path, err)
	}
	if r.Mounts == nil {
		t.Fatalf("%s has no mounts", e.Path)
	}
	return r
}

func TestAssembleDeterministic(t *testing.T) {
	spec := loadSpec(t, testSpec)
	images := testImages(t)
	dump := func() string {
		h, err := Assemble(context.Background(), spec, images)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		_ = h.Tree.Walk(func(e *Entry) error {
			c := *e
			c.Content.Data = nil
			j, _ := json.Marshal(c)
			b.Write(j)
			if e.Content.Data != nil {
				b.Write(e.Content.Data)
			}
			return nil
		})
		return b.String()
	}
	if a, b := dump(), dump(); a != b {
		t.Error("two assemblies of the same spec differ")
	}
}

func TestAssembleErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		yaml   string
		images func(*testing.T, map[string]*resolve.Image)
		want   []string
	}{
		{
			name: "unresolved image",
			yaml: "init:\n  - example.org/missing:1\n",
			want: []string{"host.yml:2:5", `"example.org/missing:1"`, "not resolved"},
		},
		{
			name: "escaping entry",
			yaml: "services:\n  - name: web\n    image: example.org/web:1\n",
			images: func(t *testing.T, m map[string]*resolve.Image) {
				m["example.org/web:1"].Layers = append(m["example.org/web:1"].Layers,
					layer(t, reg("../../etc/shadow", "x", 0o644)))
			},
			want: []string{"host.yml:3:12", `"example.org/web:1"`, `"../../etc/shadow"`, "escapes", "layer sha256:"},
		},
		{
			name: "no kernel tar",
			yaml: "kernel:\n  image: example.org/ro:1\n",
			want: []string{"host.yml:2:10", `no file "kernel"`},
		},
		{
			name: "files source missing",
			yaml: "files:\n  - path: etc/x\n    source: nothing.txt\n",
			want: []string{"host.yml:2:5", "reading source"},
		},
		{
			name: "files unknown container id",
			yaml: "files:\n  - path: etc/x\n    contents: x\n    uid: nobody-here\n",
			want: []string{"host.yml:2:5", "unknown container"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := loadSpec(t, tc.yaml)
			images := testImages(t)
			if tc.images != nil {
				tc.images(t, images)
			}
			_, err := Assemble(context.Background(), spec, images)
			if err == nil {
				t.Fatal("assembled")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestAssembleCanceled(t *testing.T) {
	spec := loadSpec(t, testSpec)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Assemble(ctx, spec, testImages(t)); err == nil || !strings.Contains(err.Error(), "canceled") {
		t.Fatalf("err = %v", err)
	}
}

func TestAssembleKernelWithoutTar(t *testing.T) {
	for _, tarLine := range []string{"  tar: none\n", "  tar: \"\"\n"} {
		spec := loadSpec(t, "kernel:\n  image: example.org/ro:1\n  binary: ro\n"+tarLine)
		h, err := Assemble(context.Background(), spec, testImages(t))
		if err != nil {
			t.Fatalf("%q: %v", tarLine, err)
		}
		if readAll(t, h.Kernel) != "ro" || h.Ucode != nil {
			t.Errorf("%q: kernel %+v ucode %+v", tarLine, h.Kernel, h.Ucode)
		}
		if h.Tree.Len() != 1 {
			t.Errorf("%q: root holds %d entries, want only itself", tarLine, h.Tree.Len())
		}
	}
}
