package modindex

import (
	"io"
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
	ix, err := ParseDep(strings.NewReader(dep))
	if err != nil {
		t.Fatal(err)
	}
	if m := ix.Modules[6]; m.Name != "snd_pcm" {
		t.Fatalf("name of %s = %q", m.Path, m.Name)
	}
	order, problems := ix.Order()
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
	ix := newIndex([]Module{
		{Name: "a", Path: "a.ko", Deps: []string{"b.ko"}},
		{Name: "b", Path: "b.ko", Deps: []string{"a.ko"}},
		{Name: "c", Path: "c.ko", Deps: []string{"gone.ko"}},
		{Name: "d", Path: "d.ko"},
	}, false)
	order, problems := ix.Order()
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
	ix, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	order, problems := ix.Order()
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
	// virtio_ring was left out of the copy: the walks pass over it, Check
	// (what a build runs) names it.
	if err := ix.Check(); err == nil || !strings.Contains(err.Error(), "virtio_net.ko needs virtio_ring") {
		t.Fatalf("Check = %v", err)
	}
	info, err := ReadInfo(filepath.Join(dir, "kernel/drivers/net/virtio_net.ko"))
	if err != nil || info.Name != "virtio_net" || info.Fields["name"] != "virtio_net" {
		t.Fatalf("modinfo name %q, %v", info.Name, err)
	}
}

func TestClosureDependenciesFirst(t *testing.T) {
	ix, err := ParseDep(strings.NewReader(`kernel/drivers/md/dm-mod.ko:
kernel/drivers/md/dm-bufio.ko: kernel/drivers/md/dm-mod.ko
kernel/drivers/md/dm-verity.ko: kernel/drivers/md/dm-bufio.ko kernel/drivers/md/dm-mod.ko
kernel/fs/erofs/erofs.ko:
`))
	if err != nil {
		t.Fatal(err)
	}
	order, missing, problems := ix.Closure([]string{"dm-verity", "ext4", "loop", "erofs", "dm_mod"})
	want := []string{"kernel/drivers/md/dm-mod.ko", "kernel/drivers/md/dm-bufio.ko", "kernel/drivers/md/dm-verity.ko", "kernel/fs/erofs/erofs.ko"}
	if !reflect.DeepEqual(order, want) || !reflect.DeepEqual(missing, []string{"ext4", "loop"}) || problems != nil {
		t.Fatalf("Closure = %q, missing %q, problems %v", order, missing, problems)
	}
}

func TestCheckAndParseErrors(t *testing.T) {
	ix, err := ParseDep(strings.NewReader("# comment\n\na.ko: b.ko\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := ix.Check(); err == nil || !strings.Contains(err.Error(), "a.ko needs b.ko, which is not listed") {
		t.Fatalf("Check = %v", err)
	}
	for dep, want := range map[string]string{
		"a.ko b.ko\n":    "modules.dep:1: no colon",
		"a.ko:\na.ko:\n": "modules.dep:2: a.ko listed twice",
		": b.ko\n":       "modules.dep:1: no colon",
	} {
		if _, err := ParseDep(strings.NewReader(dep)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseDep(%q) = %v, want %q", dep, err, want)
		}
	}
}

// TestParseDepLimit feeds a modules.dep one byte over Limit, made of valid
// lines, and wants it refused rather than read.
func TestParseDepLimit(t *testing.T) {
	line := "kernel/" + strings.Repeat("x", 1000) + ".ko:\n"
	big := io.MultiReader(strings.NewReader(strings.Repeat(line, Limit/len(line))), strings.NewReader(strings.Repeat("#", Limit%len(line)+1)))
	if _, err := ParseDep(big); err == nil || !strings.Contains(err.Error(), "larger than 16 MiB") {
		t.Fatalf("ParseDep(over Limit) = %v", err)
	}
}

func TestScanRefusesCompressedModules(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "kernel/fs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "kernel/fs/erofs.ko.xz"), []byte("\xfd7zXZ\x00"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(dir); err == nil || !strings.Contains(err.Error(), "erofs.ko.xz is compressed") {
		t.Fatalf("Read = %v", err)
	}
}
