package minimal

import (
	"os"
	"slices"
	"testing"
)

func TestAnalyze(t *testing.T) {
	es := []*Entry{
		{Path: "init", Kind: KindFile, Mode: 0o755, Size: 100, Origin: "init@sha256:a#layer sha256:1", ELF: &ELF{Type: ELFExec}},
		{Path: "lib", Kind: KindDir, Mode: 0o755},
		{Path: "usr/lib", Kind: KindSymlink, Link: "../lib"},
		{Path: "usr", Kind: KindDir, Mode: 0o755},
		{Path: "lib/ld-musl-x86_64.so.1", Kind: KindFile, Mode: 0o755, Size: 10, Origin: "init@sha256:a#layer sha256:1", ELF: &ELF{Type: ELFShared}},
		{Path: "usr/bin/runc", Kind: KindFile, Mode: 0o755, Size: 50, Origin: "runc@sha256:b", ELF: &ELF{Type: ELFExec, Interp: "/lib/ld-musl-x86_64.so.1", Needed: []string{"libseccomp.so.2"}}},
		{Path: "lib/libseccomp.so.2", Kind: KindSymlink, Link: "libseccomp.so.2.5"},
		{Path: "lib/libseccomp.so.2.5", Kind: KindFile, Mode: 0o644, Size: 20, Origin: "runc@sha256:b", ELF: &ELF{Type: ELFShared}},
		{Path: "lib/libunused.so", Kind: KindFile, Mode: 0o644, Size: 30, Origin: "runc@sha256:b", ELF: &ELF{Type: ELFShared}},
		{Path: "bin/sh", Kind: KindFile, Mode: 0o755, Size: 40, Origin: "spec:host.yml:3:5", ELF: &ELF{Type: ELFExec}},
		{Path: "usr/bin/passwd", Kind: KindFile, Mode: 0o4755, Size: 1, Origin: "spec:host.yml:4:5"},
		{Path: "tmp", Kind: KindDir, Mode: 0o1777},
		{Path: "data", Kind: KindDir, Mode: 0o777},
		{Path: "c/rootfs/app", Kind: KindFile, Mode: 0o755, Size: 5, Interp: "/bin/sh"},
		{Path: "c/rootfs/bin/sh", Kind: KindFile, Mode: 0o755, Size: 5, ELF: &ELF{Type: ELFExec}},
		{Path: "lib/modules/x.ko", Kind: KindFile, Mode: 0o644, Size: 5, ELF: &ELF{Type: ELFOther}},
	}
	r := Analyze(es, []Entrypoint{
		{Name: "init", Path: "/init"},
		{Name: "runc", Path: "/usr/bin/runc"},
		{Name: "app", Root: "c/rootfs", Path: "/app"},
		{Name: "missing", Path: "/usr/bin/containerd"},
	})
	if want := []string{"bin/sh", "lib/libunused.so"}; !slices.Equal(r.Vestigial, want) {
		t.Errorf("vestigial = %v, want %v", r.Vestigial, want)
	}
	if got := r.WithFlag(FlagShell); !slices.Equal(got, []string{"bin/sh", "c/rootfs/bin/sh"}) {
		t.Errorf("shells = %v", got)
	}
	if got := r.WithFlag(FlagSetuid); !slices.Equal(got, []string{"usr/bin/passwd"}) {
		t.Errorf("setuid = %v", got)
	}
	if got := r.WithFlag(FlagWorldWritable); !slices.Equal(got, []string{"data"}) {
		t.Errorf("world-writable = %v", got)
	}
	if r.TotalSize != 266 {
		t.Errorf("total = %d", r.TotalSize)
	}
	if r.Components[0].Origin != "init@sha256:a" || r.Components[0].Size != 110 {
		t.Errorf("components = %+v", r.Components)
	}
	if r.Entrypoints[3].Resolved != "" || r.Entrypoints[1].Resolved != "usr/bin/runc" {
		t.Errorf("entrypoints = %+v", r.Entrypoints)
	}
}

func TestReadELF(t *testing.T) {
	f, err := os.Open("/bin/ls")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	e := ReadELF(f)
	if e == nil || e.Type != ELFExec || e.Interp == "" || !slices.Contains(e.Needed, "libc.so.6") {
		t.Errorf("ReadELF(/bin/ls) = %+v", e)
	}
	if Shebang([]byte("#!/bin/sh -e\necho")) != "/bin/sh" || Shebang([]byte("echo")) != "" {
		t.Error("Shebang")
	}
}

// The image: device nodes, a capability-carrying binary and
// world-writable files outside the places made for them are flagged;
// what lies in tmp-like directories is not.
func TestFlagsDevicesCapabilitiesWorldWritable(t *testing.T) {
	es := []*Entry{
		{Path: "dev/mem", Kind: KindDevice, Mode: 0o666},
		{Path: "dev/sda", Kind: KindDevice, Mode: 0o660},
		{Path: "usr/bin/ping", Kind: KindFile, Mode: 0o755, Size: 1, Caps: true},
		{Path: "etc/motd", Kind: KindFile, Mode: 0o666, Size: 1},
		{Path: "tmp/scratch", Kind: KindFile, Mode: 0o666, Size: 1},
		{Path: "var/tmp/x", Kind: KindFile, Mode: 0o666, Size: 1},
		{Path: "containers/services/web/rootfs/tmp/y", Kind: KindFile, Mode: 0o666, Size: 1},
		{Path: "containers/services/web/rootfs/etc/z", Kind: KindFile, Mode: 0o666, Size: 1},
		{Path: "tmpfiles/w", Kind: KindFile, Mode: 0o666, Size: 1},
		{Path: "usr/lib/l", Kind: KindSymlink, Mode: 0o777},
	}
	r := Analyze(es, nil)
	for flag, want := range map[string][]string{
		FlagDevice:        {"dev/mem", "dev/sda"},
		FlagCapabilities:  {"usr/bin/ping"},
		FlagWorldWritable: {"containers/services/web/rootfs/etc/z", "dev/mem", "etc/motd", "tmpfiles/w"},
	} {
		if got := r.WithFlag(flag); !slices.Equal(got, want) {
			t.Errorf("%s: %v, want %v", flag, got, want)
		}
	}
}
