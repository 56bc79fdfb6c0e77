package ocispec

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulkhead-dev/bulkhead/builder/config"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func ptr[T any](v T) *T { return &v }

func num(n uint32) config.ID   { return config.ID{Num: &n} }
func named(s string) config.ID { return config.ID{Name: s} }

// imageWith is an image config as a Dockerfile would leave it.
func imageWith(entrypoint, cmd, env []string, labels map[string]string) *v1.ConfigFile {
	return &v1.ConfigFile{Architecture: "amd64", OS: "linux", Config: v1.Config{
		Entrypoint: entrypoint, Cmd: cmd, Env: env, Labels: labels,
	}}
}

// passwd and group are an image's /etc/passwd and /etc/group.
const (
	passwd = "root:x:0:0:root:/root:/bin/sh\nnginx:x:101:102:nginx:/var/cache/nginx:/sbin/nologin\n"
	group  = "root:x:0:\nadm:x:4:\nnginx:x:102:\nwheel:x:10:root\n"
)

// lookups resolves names against passwd and group files, the way the
// assembler resolves them against an image's root.
func lookups(in *Input) {
	fields := func(file, name string) []string {
		for _, line := range strings.Split(file, "\n") {
			f := strings.Split(line, ":")
			if len(f) > 3 && f[0] == name {
				return f
			}
		}
		return nil
	}
	atoi := func(s string) uint32 {
		var n uint32
		for _, c := range s {
			n = n*10 + uint32(c-'0')
		}
		return n
	}
	in.LookupUser = func(name string) (uint32, uint32, bool) {
		f := fields(passwd, name)
		if f == nil {
			return 0, 0, false
		}
		return atoi(f[2]), atoi(f[3]), true
	}
	in.LookupGroup = func(name string) (uint32, bool) {
		f := fields(group, name)
		if f == nil {
			return 0, false
		}
		return atoi(f[2]), true
	}
}

var testIDs = map[string]uint32{"sysctl": 100, "dhcpcd": 101, "getty": 102, "sshd": 103}

var rngdImage = imageWith([]string{"/sbin/rngd"}, []string{"-f"}, []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}, nil)

// goldenCases are representative declarations; testdata/<name>.config.json
// and <name>.runtime.json hold what LinuxKit writes for them (checked by
// hand against its moby ConfigToOCI).
var goldenCases = []struct {
	name   string
	image  config.Image
	config *v1.ConfigFile
}{
	{
		name:   "bare",
		image:  config.Image{Name: "rngd", Image: "linuxkit/rngd:v1"},
		config: rngdImage,
	},
	{
		name: "capabilities",
		image: config.Image{Name: "dhcpcd", Image: "linuxkit/dhcpcd:v1", ImageConfig: config.ImageConfig{
			Capabilities: &[]string{"CAP_NET_RAW", "CAP_NET_ADMIN", "CAP_NET_BIND_SERVICE"},
			Ambient:      &[]string{"CAP_SYS_ADMIN"},
			Net:          "new",
			Cwd:          "/var/lib/dhcpcd",
		}},
		config: imageWith(nil, []string{"/sbin/dhcpcd", "--nobackground"}, nil, nil),
	},
	{
		name: "all",
		image: config.Image{Name: "docker", Image: "docker:dind", ImageConfig: config.ImageConfig{
			Capabilities: &[]string{"all"},
			Net:          "host",
			Pid:          "host",
			Uts:          "new",
			Ipc:          "/run/ipc/shared",
			Command:      &[]string{"/usr/local/bin/dockerd"},
		}},
		config: imageWith([]string{"dockerd-entrypoint.sh"}, nil, []string{"DOCKER_TLS_CERTDIR=/certs"}, nil),
	},
	{
		name: "userns",
		image: config.Image{Name: "sandbox", Image: "alpine:3.21", ImageConfig: config.ImageConfig{
			Capabilities: &[]string{"none"},
			Net:          "/run/netns/sandbox",
			Userns:       "new",
			UIDMappings:  &[]specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}},
			GIDMappings:  &[]specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}},
		}},
		config: imageWith(nil, []string{"/bin/sh"}, []string{"PATH=/bin"}, nil),
	},
	{
		name: "binds-add",
		image: config.Image{Name: "getty", Image: "linuxkit/getty:v1", ImageConfig: config.ImageConfig{
			BindsAdd: &[]string{"/var/tmp:/var/tmp", "/etc/getty.shadow:/etc/shadow:ro", "/var/log:/var/log"},
			Env:      &[]string{"INSECURE=true"},
		}},
		config: imageWith(nil, []string{"/usr/bin/rungetty.sh"}, []string{"PATH=/bin"}, map[string]string{
			config.LabelName: `{"capabilities":["CAP_SYS_ADMIN","CAP_SETUID"],"binds":["/etc/resolv.conf:/etc/resolv.conf","/var/log:/var/log"],"pid":"host","env":["LABEL=1"]}`,
		}),
	},
	{
		name: "readonly-tmpfs",
		image: config.Image{Name: "ntpd", Image: "linuxkit/openntpd:v1", ImageConfig: config.ImageConfig{
			Readonly: ptr(true),
			Tmpfs:    &[]string{"/run", "/var/db/ntp:size=1m,mode=0700", "/dev:size=1m"},
			Binds:    &[]string{"/etc/ntpd.conf:/etc/ntpd.conf:ro,rprivate"},
		}},
		config: imageWith([]string{"/usr/sbin/ntpd", "-d", "-s"}, nil, nil, nil),
	},
	{
		name: "uid-by-name",
		image: config.Image{Name: "nginx", Image: "nginx:1.27-alpine", ImageConfig: config.ImageConfig{
			UID:            ptr(named("nginx")),
			AdditionalGids: &[]config.ID{named("adm"), named("dhcpcd"), num(7)},
		}},
		config: imageWith([]string{"/docker-entrypoint.sh"}, []string{"nginx", "-g", "daemon off;"}, nil, nil),
	},
	{
		name: "uid-by-container",
		image: config.Image{Name: "sshd", Image: "linuxkit/sshd:v1", ImageConfig: config.ImageConfig{
			UID: ptr(named("sshd")),
			GID: ptr(named("wheel")),
		}},
		config: imageWith(nil, []string{"/usr/sbin/sshd", "-D", "-e"}, nil, nil),
	},
	{
		name: "rlimits",
		image: config.Image{Name: "redis", Image: "redis:7", ImageConfig: config.ImageConfig{
			Rlimits:         &[]string{"nofile,10240,65536", "RLIMIT_CORE,unlimited,unlimited", " memlock , 0 , 8192 "},
			OOMScoreAdj:     ptr(-500),
			NoNewPrivileges: ptr(true),
			Capabilities:    &[]string{"CAP_SETUID", "CAP_SETGID"},
		}},
		config: imageWith([]string{"docker-entrypoint.sh"}, []string{"redis-server"}, nil, nil),
	},
	{
		name: "mounts",
		image: config.Image{Name: "cadvisor", Image: "google/cadvisor:v0.47", ImageConfig: config.ImageConfig{
			Mounts: &[]specs.Mount{
				{Type: "cgroup", Options: []string{"rw", "nosuid", "noexec", "nodev", "relatime"}},
				{Source: "mqueue"},
				{Destination: "/dev", Options: []string{"nosuid", "mode=755"}},
				{Type: "bind", Source: "/var/lib/docker", Destination: "/var/lib/docker", Options: []string{"rbind", "ro"}},
				{Type: "tmpfs", Destination: "scratch/./cache"}, // relative: /scratch/cache, as runc resolves it
			},
			Binds: &[]string{"/sys:/sys"},
		}},
		config: imageWith([]string{"/usr/bin/cadvisor", "-logtostderr"}, nil, nil, nil),
	},
	{
		name: "devices",
		image: config.Image{Name: "qemu", Image: "linuxkit/qemu:v1", ImageConfig: config.ImageConfig{
			Devices: &[]config.Device{
				{Path: "all", Type: "b"},
				{Path: "/dev/kvm", Type: "c", Major: 10, Minor: 232, Mode: "0666"},
				{Path: "/dev/net/tun", Type: "c", Major: 10, Minor: 200, Mode: "0600"},
			},
			Resources: &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}},
		}},
		config: imageWith(nil, []string{"qemu-system-x86_64"}, nil, nil),
	},
	{
		name: "cgroupns",
		image: config.Image{Name: "agent", Image: "example/agent:v1", ImageConfig: config.ImageConfig{
			Cgroupns: "new",
		}},
		config: imageWith(nil, []string{"/agent"}, nil, nil),
	},
	{
		name: "resources-sysctl",
		image: config.Image{Name: "kubelet", Image: "linuxkit/kubelet:v1", ImageConfig: config.ImageConfig{
			Resources: &specs.LinuxResources{
				Memory: &specs.LinuxMemory{Limit: ptr(int64(512 << 20))},
				CPU:    &specs.LinuxCPU{Shares: ptr(uint64(512)), Cpus: "0-1"},
				Pids:   &specs.LinuxPids{Limit: ptr(int64(256))},
			},
			Sysctl:            &map[string]string{"net.ipv4.ip_forward": "1", "kernel.msgmax": "65536"},
			Annotations:       &map[string]string{"org.example/role": "node", "com.example.z": "last"},
			Hostname:          "node-1",
			CgroupsPath:       ptr("/podruntime/kubelet"),
			RootfsPropagation: ptr("shared"),
			MaskedPaths:       &[]string{"/proc/kcore", "/sys/firmware"},
			ReadonlyPaths:     &[]string{"/proc/sys"},
			Uts:               "new",
		}},
		config: &v1.ConfigFile{Config: v1.Config{Cmd: []string{"kubelet"}, WorkingDir: "/var/lib/kubelet"}},
	},
}

func generate(t *testing.T, img config.Image, cf *v1.ConfigFile) *Result {
	t.Helper()
	in := Input{Image: &img, Config: cf, IDs: testIDs}
	lookups(&in)
	res, err := Generate(in)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	return res
}

func TestGolden(t *testing.T) {
	for _, c := range goldenCases {
		t.Run(c.name, func(t *testing.T) {
			res := generate(t, c.image, c.config)
			checkGolden(t, c.name, res)
		})
	}
}

// checkGolden compares a result's config.json and runtime.json with the
// golden files, or rewrites them with -update.
func checkGolden(t *testing.T, name string, res *Result) {
	t.Helper()
	cfg, err := Marshal(res.Spec)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := MarshalRuntime(res.Runtime)
	if err != nil {
		t.Fatal(err)
	}
	for suffix, got := range map[string][]byte{".config.json": cfg, ".runtime.json": rt} {
		path := filepath.Join("testdata", name+suffix)
		if *update {
			if err := os.WriteFile(path, append(got, '\n'), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(append(got, '\n'), want) {
			t.Errorf("%s differs from the golden file:\n%s", path, got)
		}
	}
}

// TestCgroupNamespace pins LinuxKit's behaviour: no cgroup namespace unless
// the entry asks for one with bulkhead's cgroupns: new.
func TestCgroupNamespace(t *testing.T) {
	has := func(res *Result) bool {
		for _, ns := range res.Spec.Linux.Namespaces {
			if ns.Type == specs.CgroupNamespace {
				return true
			}
		}
		return false
	}
	if res := generate(t, config.Image{Name: "rngd", Image: "linuxkit/rngd:v1"}, rngdImage); has(res) {
		t.Error("default: a cgroup namespace, which LinuxKit never creates")
	}
	img := config.Image{Name: "rngd", Image: "linuxkit/rngd:v1", ImageConfig: config.ImageConfig{Cgroupns: "new"}}
	if res := generate(t, img, rngdImage); !has(res) {
		t.Error("cgroupns: new: no cgroup namespace")
	}
}
