package ocispec

import (
	"reflect"
	"strings"
	"testing"

	"github.com/bulkhead-dev/bulkhead/builder/config"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestGenerateErrors(t *testing.T) {
	for _, c := range []struct {
		name  string
		cfg   config.ImageConfig
		label string
		want  string
	}{
		{name: "unknown uid name", cfg: config.ImageConfig{UID: ptr(named("nobody"))}, want: `uid: unknown user or container "nobody"`},
		{name: "unknown gid name", cfg: config.ImageConfig{GID: ptr(named("staff"))}, want: `gid: unknown group or container "staff"`},
		{name: "unknown additional gid", cfg: config.ImageConfig{AdditionalGids: &[]config.ID{named("audio")}}, want: `additionalGids: unknown group or container "audio"`},
		{name: "rlimit fields", cfg: config.ImageConfig{Rlimits: &[]string{"nofile,1024"}}, want: "parsing rlimits"},
		{name: "rlimit name", cfg: config.ImageConfig{Rlimits: &[]string{"nofiles,1024,1024"}}, want: "unknown rlimit"},
		{name: "rlimit value", cfg: config.ImageConfig{Rlimits: &[]string{"nofile,lots,1024"}}, want: "soft limit"},
		{name: "bind without colon", cfg: config.ImageConfig{Binds: &[]string{"/var/log"}}, want: "parsing binds"},
		{name: "bind with too many colons", cfg: config.ImageConfig{BindsAdd: &[]string{"/a:/b:ro:x"}}, want: "parsing binds"},
		{name: "tmpfs with too many colons", cfg: config.ImageConfig{Tmpfs: &[]string{"/tmp:size=1m:x"}}, want: "parsing tmpfs"},
		{name: "mount without type", cfg: config.ImageConfig{Mounts: &[]specs.Mount{{Source: "/x", Destination: "/y"}}}, want: `mount on "/y": missing type`},
		{name: "mount without destination", cfg: config.ImageConfig{Mounts: &[]specs.Mount{{Type: "tmpfs"}}}, want: `mount of type "tmpfs": missing destination`},
		{name: "unknown capability", cfg: config.ImageConfig{Capabilities: &[]string{"CAP_NET_ADMIN", "all"}}, want: `unknown capability "all"`},
		{name: "lowercase capability", cfg: config.ImageConfig{Ambient: &[]string{"cap_chown"}}, want: `unknown capability "cap_chown"`},
		{name: "device mode", cfg: config.ImageConfig{Devices: &[]config.Device{{Path: "/dev/kvm", Type: "c", Major: 10, Minor: 232}}}, want: "device /dev/kvm"},
		{name: "bad label", label: `{"binds": "/a:/b"}`, want: "org.mobyproject.config"},
		{name: "label sets name", label: `{"name": "x"}`, want: "name cannot be set"},
		{name: "label not JSON", label: `binds: [/a:/a]`, want: "invalid JSON"},
		{name: "bad bind in label", label: `{"binds": ["/a"]}`, want: `org.mobyproject.config:1:12: bind "/a"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := Input{Image: &config.Image{Name: "svc", Image: "svc:v1", ImageConfig: c.cfg}, IDs: testIDs}
			if c.label != "" {
				in.Config = imageWith(nil, nil, nil, map[string]string{config.LabelName: c.label})
			}
			lookups(&in)
			res, err := Generate(in)
			if err == nil {
				t.Fatalf("Generate succeeded (%+v), want an error containing %q", res.Spec, c.want)
			}
			if !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "generating oci spec for svc: ") {
				t.Errorf("error = %q, want it to name svc and contain %q", err, c.want)
			}
		})
	}
}

// TestNoLookups: without passwd/group lookups, names resolve only to
// containers, as in LinuxKit.
func TestNoLookups(t *testing.T) {
	img := config.Image{Name: "svc", ImageConfig: config.ImageConfig{UID: ptr(named("nginx"))}}
	if _, err := Generate(Input{Image: &img}); err == nil || !strings.Contains(err.Error(), `unknown user or container "nginx"`) {
		t.Errorf("err = %v, want unknown user", err)
	}
	img.UID = ptr(named("getty"))
	res, err := Generate(Input{Image: &img, IDs: testIDs})
	if err != nil {
		t.Fatal(err)
	}
	if u := res.Spec.Process.User; u.UID != 102 || u.GID != 0 {
		t.Errorf("user = %+v, want uid 102 gid 0", u)
	}
}

// TestSpecBeatsLabel: a field set in the spec replaces the label's whole
// (capabilities, binds), while `.add` fields extend it.
func TestSpecBeatsLabel(t *testing.T) {
	cf := imageWith(nil, []string{"/bin/x"}, nil, map[string]string{
		config.LabelName: `{"capabilities":["CAP_CHOWN"],"binds":["/a:/a"],"cwd":"/label","hostname":"label"}`,
	})
	img := config.Image{Name: "svc", ImageConfig: config.ImageConfig{
		Capabilities:    &[]string{"CAP_KILL"},
		CapabilitiesAdd: &[]string{"CAP_SYSLOG"},
		Binds:           &[]string{"/b:/b"},
		BindsAdd:        &[]string{"/c:/c"},
		Hostname:        "spec",
	}}
	res := generate(t, img, cf)
	if got := res.Spec.Process.Capabilities.Effective; !reflect.DeepEqual(got, []string{"CAP_KILL"}) {
		t.Errorf("effective = %v, want the spec's [CAP_KILL] only", got)
	}
	var binds []string
	for _, m := range res.Spec.Mounts {
		if m.Type == "bind" {
			binds = append(binds, m.Source)
		}
	}
	if !reflect.DeepEqual(binds, []string{"/b"}) {
		t.Errorf("binds = %v, want the spec's [/b] only", binds)
	}
	if res.Spec.Process.Cwd != "/label" || res.Spec.Hostname != "spec" {
		t.Errorf("cwd, hostname = %q, %q; want /label, spec", res.Spec.Process.Cwd, res.Spec.Hostname)
	}

	img.Capabilities, img.Binds = nil, nil
	res = generate(t, img, cf)
	if got := res.Spec.Process.Capabilities.Effective; !reflect.DeepEqual(got, []string{"CAP_CHOWN", "CAP_SYSLOG"}) {
		t.Errorf("effective = %v, want label + add [CAP_CHOWN CAP_SYSLOG]", got)
	}
}

// TestInputUntouched: generating does not change the caller's entry, so
// one entry can be generated twice with the same result.
func TestInputUntouched(t *testing.T) {
	c := goldenCases[10] // devices: appends rules to the entry's resources
	if c.name != "devices" {
		t.Fatalf("goldenCases[10] is %s, want devices", c.name)
	}
	before := len(c.image.Resources.Devices)
	first, err := Marshal(generate(t, c.image, c.config).Spec)
	if err != nil {
		t.Fatal(err)
	}
	second, err := Marshal(generate(t, c.image, c.config).Spec)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.image.Resources.Devices) != before {
		t.Errorf("entry's resources.devices grew from %d to %d", before, len(c.image.Resources.Devices))
	}
	if string(first) != string(second) {
		t.Error("two generations of the same entry differ")
	}
}

func TestAssignIDs(t *testing.T) {
	spec := &config.Spec{
		Onboot:     []*config.Image{{Name: "sysctl"}, {Name: "dhcpcd"}},
		Onshutdown: []*config.Image{{Name: "shutdown"}},
		Services:   []*config.Image{{Name: "getty"}, {Name: "sshd"}},
	}
	want := map[string]uint32{"sysctl": 100, "dhcpcd": 101, "shutdown": 102, "getty": 103, "sshd": 104}
	if got := AssignIDs(spec); !reflect.DeepEqual(got, want) {
		t.Errorf("AssignIDs = %v, want %v", got, want)
	}
}

func TestRootfsMounts(t *testing.T) {
	ro := RootfsMounts("containers/services/ntpd", "containers/services/ntpd/rootfs", true)
	wantRO := []specs.Mount{{Source: "/containers/services/ntpd/rootfs", Destination: "/containers/services/ntpd/rootfs", Options: []string{"bind"}}}
	if !reflect.DeepEqual(ro, wantRO) {
		t.Errorf("read-only: %+v, want %+v", ro, wantRO)
	}
	rw := RootfsMounts("containers/onboot/001-dhcpcd", "containers/onboot/000-sysctl/lower", false)
	wantRW := []specs.Mount{
		{Source: "tmpfs", Type: "tmpfs", Destination: "/containers/onboot/001-dhcpcd/tmp"},
		{Destination: "/containers/onboot/001-dhcpcd/tmp", Options: []string{"remount", "private"}},
		{Source: "overlay", Type: "overlay", Destination: "/containers/onboot/001-dhcpcd/rootfs", Options: []string{
			"lowerdir=/containers/onboot/000-sysctl/lower",
			"upperdir=/containers/onboot/001-dhcpcd/tmp/upper",
			"workdir=/containers/onboot/001-dhcpcd/tmp/work",
		}},
	}
	if !reflect.DeepEqual(rw, wantRW) {
		t.Errorf("overlay: %+v, want %+v", rw, wantRW)
	}
}
