package containers

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/bulkhead-dev/bulkhead/builder/config"
	"github.com/bulkhead-dev/bulkhead/builder/ocispec"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// writeBundle lays out one bundle the way the builder does.
func writeBundle(t *testing.T, dir string, rt config.Runtime, writable bool) {
	t.Helper()
	for _, d := range []string{"rootfs", "lower", "tmp"} {
		if d != "rootfs" && !writable {
			continue
		}
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	spec, err := ocispec.Marshal(&specs.Spec{Version: "1.2.0", Root: &specs.Root{Path: "rootfs", Readonly: !writable},
		Process: &specs.Process{Args: []string{"/srv"}, Cwd: "/"}})
	if err != nil {
		t.Fatal(err)
	}
	runtime, err := ocispec.MarshalRuntime(rt)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), spec, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "runtime.json"), runtime, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestListReadsLinuxKitLayout(t *testing.T) {
	root := t.TempDir()
	ns := "services.example"
	mkdirs := []string{"/var/lib/web", "data"}
	writeBundle(t, filepath.Join(root, "containers/onboot/001-sysctl"), config.Runtime{}, false)
	writeBundle(t, filepath.Join(root, "containers/onboot/000-dhcpcd"), config.Runtime{}, true)
	writeBundle(t, filepath.Join(root, "containers/services/web"), config.Runtime{Mkdir: &mkdirs, Namespace: &ns}, false)

	onboot, err := List(root, Onboot)
	if err != nil {
		t.Fatal(err)
	}
	if len(onboot) != 2 || onboot[0].Name != "dhcpcd" || onboot[1].Name != "sysctl" {
		t.Fatalf("onboot = %+v", onboot)
	}
	if !onboot[0].Writable || onboot[1].Writable {
		t.Fatalf("writable = %v, %v", onboot[0].Writable, onboot[1].Writable)
	}
	if want := filepath.Join(root, "containers/onboot/000-dhcpcd/rootfs"); onboot[0].Spec.Root.Path != want {
		t.Fatalf("root path %q, want %q", onboot[0].Spec.Root.Path, want)
	}
	services, err := List(root, Services)
	if err != nil {
		t.Fatal(err)
	}
	if len(services) != 1 || services[0].Name != "web" || services[0].Runtime.Namespace != ns ||
		!reflect.DeepEqual(services[0].Runtime.Mkdir, mkdirs) {
		t.Fatalf("services = %+v", services)
	}
	if got, err := List(root, Onshutdown); err != nil || len(got) != 0 {
		t.Fatalf("missing onshutdown: %v, %v", got, err)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(dir, Services); err == nil {
		t.Fatal("no config.json: want error")
	}
	os.WriteFile(filepath.Join(dir, "config.json"), []byte("{"), 0o644)
	if _, err := Load(dir, Services); err == nil {
		t.Fatal("bad config.json: want error")
	}
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"root":{"path":"/abs"}}`), 0o644)
	b, err := Load(dir, Services)
	if err != nil || b.Spec.Root.Path != "/abs" || len(Plan(b)) != 1 {
		t.Fatalf("no runtime.json: %+v, %v", b, err)
	}
}

func TestPlanConventions(t *testing.T) {
	ro := Bundle{Dir: "/containers/services/web"}
	if got, want := Plan(ro), []Step{{Op: Mount, Path: "/containers/services/web/rootfs",
		Source: "/containers/services/web/rootfs", Flags: unix.MS_BIND}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("readonly plan %+v", got)
	}
	rw := Bundle{Dir: "/c/onboot/000-x", Writable: true, Runtime: Runtime{Cgroups: []string{"x"}, Mkdir: []string{"/var/x", "in"}}}
	want := []Step{
		{Op: Mount, Path: "/c/onboot/000-x/tmp", Source: "tmpfs", Type: "tmpfs", Data: "mode=0755"},
		{Op: Mount, Path: "/c/onboot/000-x/tmp", Flags: unix.MS_PRIVATE},
		{Op: Mkdir, Path: "/c/onboot/000-x/tmp/upper"},
		{Op: Mkdir, Path: "/c/onboot/000-x/tmp/work"},
		{Op: Mount, Path: "/c/onboot/000-x/rootfs", Source: "overlay", Type: "overlay",
			Data: "lowerdir=/c/onboot/000-x/lower,upperdir=/c/onboot/000-x/tmp/upper,workdir=/c/onboot/000-x/tmp/work"},
		{Op: Mkdir, Path: "/var/x"},
		{Op: Mkdir, Path: "/c/onboot/000-x/rootfs/in"},
		{Op: Cgroup, Path: "/sys/fs/cgroup/x"},
	}
	if got := Plan(rw); !reflect.DeepEqual(got, want) {
		t.Fatalf("writable plan\n got %+v\nwant %+v", got, want)
	}
}

// TestPlanBuilderMounts feeds the root mounts the builder writes into
// runtime.json and checks the plan follows them instead of the convention.
func TestPlanBuilderMounts(t *testing.T) {
	mounts := ocispec.RootfsMounts("containers/onboot/000-x", "containers/onboot/000-x/lower", false)
	b := Bundle{Dir: "/containers/onboot/000-x", Writable: true, Runtime: Runtime{Mounts: mounts}}
	want := []Step{
		{Op: Mkdir, Path: "/containers/onboot/000-x/tmp"},
		{Op: Mount, Path: "/containers/onboot/000-x/tmp", Source: "tmpfs", Type: "tmpfs"},
		{Op: Mkdir, Path: "/containers/onboot/000-x/tmp"},
		{Op: Mount, Path: "/containers/onboot/000-x/tmp", Flags: unix.MS_REMOUNT | unix.MS_PRIVATE},
		{Op: Mkdir, Path: "/containers/onboot/000-x/rootfs"},
		{Op: Mkdir, Path: "/containers/onboot/000-x/tmp/upper"},
		{Op: Mkdir, Path: "/containers/onboot/000-x/tmp/work"},
		{Op: Mount, Path: "/containers/onboot/000-x/rootfs", Source: "overlay", Type: "overlay",
			Data: "lowerdir=/containers/onboot/000-x/lower,upperdir=/containers/onboot/000-x/tmp/upper,workdir=/containers/onboot/000-x/tmp/work"},
	}
	if got := Plan(b); !reflect.DeepEqual(got, want) {
		t.Fatalf("plan\n got %+v\nwant %+v", got, want)
	}
}

func TestMountOptions(t *testing.T) {
	for _, c := range []struct {
		in    []string
		flags uintptr
		data  string
	}{
		{[]string{"rw", "rbind", "rshared"}, unix.MS_BIND | unix.MS_REC | unix.MS_SHARED, ""},
		{[]string{"ro", "nosuid", "size=10%", "mode=0755"}, unix.MS_RDONLY | unix.MS_NOSUID, "size=10%,mode=0755"},
		{[]string{"ro", "rw", "noexec", "exec"}, 0, ""},
		{nil, 0, ""},
	} {
		f, d := MountOptions(c.in)
		if f != c.flags || d != c.data {
			t.Errorf("MountOptions(%q) = %#x, %q; want %#x, %q", c.in, f, d, c.flags, c.data)
		}
	}
}

// TestApplyWritableRoot mounts a real overlay the way a writable container
// gets its root, and checks writes land in the tmpfs upper layer only.
func TestApplyWritableRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs root to mount (tests run as root here)")
	}
	dir := t.TempDir()
	writeBundle(t, dir, config.Runtime{Mkdir: &[]string{"made"}}, true)
	os.WriteFile(filepath.Join(dir, "lower", "srv"), []byte("lower"), 0o644)
	b, err := Load(dir, Onboot)
	if err != nil {
		t.Fatal(err)
	}
	if err := Apply(Plan(b)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		Cleanup(b)
		unix.Unmount(filepath.Join(dir, "tmp"), unix.MNT_DETACH)
	})
	if data, err := os.ReadFile(filepath.Join(b.Rootfs(), "srv")); err != nil || string(data) != "lower" {
		t.Fatalf("read through overlay: %q, %v", data, err)
	}
	if err := os.WriteFile(filepath.Join(b.Rootfs(), "new"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "tmp/upper/new")); err != nil {
		t.Fatalf("write did not reach upper: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "lower/new")); err == nil {
		t.Fatal("write reached lower")
	}
	if fi, err := os.Stat(filepath.Join(b.Rootfs(), "made")); err != nil || !fi.IsDir() {
		t.Fatalf("mkdir inside root: %v", err)
	}
}

// TestPrepareBindsNamespace binds a real process's uts namespace to a file,
// and checks the bind is that namespace.
func TestPrepareBindsNamespace(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ns", "uts")
	if err := Prepare(uint32(os.Getpid()), Runtime{BindNS: BindNS{Uts: path}}); err != nil {
		t.Fatal(err)
	}
	defer unix.Unmount(path, unix.MNT_DETACH)
	var bound, self unix.Stat_t
	unix.Stat(path, &bound)
	unix.Stat("/proc/self/ns/uts", &self)
	if bound.Ino != self.Ino {
		t.Fatalf("bound inode %d, namespace inode %d", bound.Ino, self.Ino)
	}
	if err := Prepare(uint32(os.Getpid()), Runtime{Interfaces: []Interface{{Name: ""}, {Name: "nosuchif0"}}}); err == nil {
		t.Fatal("bad interfaces: want error")
	}
}
