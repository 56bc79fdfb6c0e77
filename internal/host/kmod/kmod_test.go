package kmod

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/bulkhead-dev/bulkhead/internal/test/testkernel"
)

func TestParseDepAndOrder(t *testing.T) {
	dep := `kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko
kernel/net/core/failover.ko:
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
kernel/fs/overlayfs/overlay.ko:
kernel/drivers/input/evdev.ko:
kernel/drivers/acpi/button.ko:
kernel/sound/snd-pcm.ko.xz:
`
	mods, err := ParseDep(strings.NewReader(dep))
	if err != nil {
		t.Fatal(err)
	}
	if mods[6].Name != "snd_pcm" {
		t.Fatalf("name of %s = %q", mods[6].Path, mods[6].Name)
	}
	order, problems := Order(mods)
	if len(problems) != 0 {
		t.Fatal(problems)
	}
	want := []string{
		"kernel/drivers/acpi/button.ko",
		"kernel/drivers/input/evdev.ko",
		"kernel/net/core/failover.ko",
		"kernel/drivers/net/net_failover.ko",
		"kernel/drivers/net/virtio_net.ko",
		"kernel/fs/overlayfs/overlay.ko",
		"kernel/sound/snd-pcm.ko.xz",
	}
	if !reflect.DeepEqual(order, want) {
		t.Fatalf("order\n got %q\nwant %q", order, want)
	}
}

func TestOrderReportsCyclesAndMissing(t *testing.T) {
	mods := []Module{
		{Name: "a", Path: "a.ko", Deps: []string{"b.ko"}},
		{Name: "b", Path: "b.ko", Deps: []string{"a.ko"}},
		{Name: "c", Path: "c.ko", Deps: []string{"gone.ko"}},
		{Name: "d", Path: "d.ko"},
	}
	order, problems := Order(mods)
	if !reflect.DeepEqual(order, []string{"d.ko"}) || len(problems) != 2 {
		t.Fatalf("order %q, problems %v", order, problems)
	}
	if !strings.Contains(problems[0].Error(), "cycle: a.ko -> b.ko -> a.ko") ||
		!strings.Contains(problems[1].Error(), "c.ko needs gone.ko") {
		t.Fatalf("problems %v", problems)
	}
}

// TestReadModinfoFromRealModules copies a few of Debian's cloud kernel
// modules (which ship without modules.dep) and checks the dependencies come
// out of their .modinfo sections.
func TestReadModinfoFromRealModules(t *testing.T) {
	src := testkernel.ModulesDir(t)
	dir := t.TempDir()
	for _, rel := range []string{
		"kernel/drivers/net/virtio_net.ko",
		"kernel/drivers/net/net_failover.ko",
		"kernel/net/core/failover.ko",
		"kernel/drivers/input/evdev.ko",
	} {
		data, err := os.ReadFile(filepath.Join(src, rel))
		if err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(filepath.Join(dir, filepath.Dir(rel)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, rel), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mods, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	order, problems := Order(mods)
	if len(problems) != 0 {
		t.Fatal(problems)
	}
	want := []string{
		"kernel/drivers/input/evdev.ko",
		"kernel/net/core/failover.ko",
		"kernel/drivers/net/net_failover.ko",
		"kernel/drivers/net/virtio_net.ko",
	}
	if !reflect.DeepEqual(order, want) {
		t.Fatalf("order\n got %q\nwant %q", order, want)
	}
	info, err := ModInfo(filepath.Join(dir, "kernel/drivers/net/virtio_net.ko"))
	if err != nil || info["name"] != "virtio_net" {
		t.Fatalf("modinfo name %q, %v", info["name"], err)
	}
}

func TestLoadMissingFile(t *testing.T) {
	if err := Load(filepath.Join(t.TempDir(), "nope.ko")); err == nil {
		t.Fatal("want error")
	}
}
