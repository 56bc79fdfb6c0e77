package recipe

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const fakeDep = `kernel/fs/overlayfs/overlay.ko:
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/md/dm-mod.ko:
kernel/drivers/md/dm-bufio.ko: kernel/drivers/md/dm-mod.ko
kernel/drivers/md/dm-verity.ko: kernel/drivers/md/dm-bufio.ko kernel/drivers/md/dm-mod.ko
kernel/net/bridge/bridge.ko: kernel/net/802/stp.ko
kernel/net/802/stp.ko:
`

func TestSelectModules(t *testing.T) {
	idx, err := parseModulesDep(strings.NewReader(fakeDep))
	if err != nil {
		t.Fatal(err)
	}
	builtin := map[string]bool{"ext4": true, "nls_cp437": true}
	sel, err := idx.selectModules([]string{"virtio_pci", "dm-verity", "ext4", "nls_cp437", "softdog?"}, builtin)
	if err != nil {
		t.Fatal(err)
	}
	wantNames := []string{"dm_bufio", "dm_mod", "dm_verity", "virtio", "virtio_pci", "virtio_ring"}
	if !reflect.DeepEqual(sel.names, wantNames) {
		t.Errorf("names = %q, want %q", sel.names, wantNames)
	}
	if !reflect.DeepEqual(sel.builtin, []string{"ext4", "nls_cp437"}) || !reflect.DeepEqual(sel.missing, []string{"softdog"}) {
		t.Errorf("builtin = %q, missing = %q", sel.builtin, sel.missing)
	}
	wantDep := `kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/md/dm-mod.ko:
kernel/drivers/md/dm-bufio.ko: kernel/drivers/md/dm-mod.ko
kernel/drivers/md/dm-verity.ko: kernel/drivers/md/dm-bufio.ko kernel/drivers/md/dm-mod.ko
`
	if got := string(idx.filterDep(sel)); got != wantDep {
		t.Errorf("modules.dep =\n%s\nwant\n%s", got, wantDep)
	}
	alias, err := filterLines(strings.NewReader("# Aliases\nalias fs-overlay overlay\nalias virtio:d00000001v* virtio_net\nalias devname:mapper/control dm_mod\n"), sel.keepAlias)
	if err != nil || string(alias) != "# Aliases\nalias devname:mapper/control dm_mod\n" {
		t.Errorf("modules.alias = %q, %v", alias, err)
	}
	if _, err := idx.selectModules([]string{"overlay", "zfs", "btrfs?"}, builtin); err == nil || !strings.Contains(err.Error(), "no module zfs") {
		t.Errorf("missing required module: err = %v", err)
	}
}

func TestParseModulesDepErrors(t *testing.T) {
	for _, dep := range []string{"kernel/a.ko kernel/b.ko\n", "kernel/a.ko: kernel/b.ko\n", "a.ko:\na.ko:\n"} {
		if _, err := parseModulesDep(strings.NewReader(dep)); err == nil {
			t.Errorf("parseModulesDep(%q): no error", dep)
		}
	}
}

// TestScanModules builds real ELF objects with a .modinfo section (gcc is
// the oracle for the ELF layout) and checks the index depmod would write.
func TestScanModules(t *testing.T) {
	dir := t.TempDir()
	mods := map[string]string{
		"kernel/lib/a.ko":         `name=a`,
		"kernel/drivers/b-x.ko":   `name=b_x\0depends=a\0alias=pci:v1234*`,
		"kernel/drivers/c.ko":     `name=c\0depends=b_x\0alias=fs-c\0alias=c-alias`,
		"kernel/drivers/other.ko": `name=other\0depends=`,
	}
	for f, info := range mods {
		compileModule(t, filepath.Join(dir, f), info)
	}
	must(t, os.WriteFile(filepath.Join(dir, "modules.order"), []byte("kernel/drivers/c.ko\nkernel/drivers/b-x.ko\nkernel/lib/a.ko\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "modules.builtin"), []byte("kernel/fs/ext4/ext4.ko\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "modules.builtin.modinfo"), []byte("ext4.x=y\x00"), 0o644))
	m, err := moduleTree(dir, "lib/modules/6.1.0-test", []string{"c", "ext4"})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	must(t, m.tree.writeTar(&buf, epoch0))
	files := readTar(t, &buf)
	p := "lib/modules/6.1.0-test/"
	want := map[string]string{
		p + "modules.dep": "kernel/drivers/c.ko: kernel/drivers/b-x.ko kernel/lib/a.ko\n" +
			"kernel/drivers/b-x.ko: kernel/lib/a.ko\nkernel/lib/a.ko:\n",
		p + "modules.order":           "kernel/drivers/c.ko\nkernel/drivers/b-x.ko\nkernel/lib/a.ko\n",
		p + "modules.alias":           "# Aliases extracted from modules themselves.\nalias fs-c c\nalias c-alias c\nalias pci:v1234* b_x\n",
		p + "modules.builtin":         "kernel/fs/ext4/ext4.ko\n",
		p + "modules.builtin.modinfo": "ext4.x=y\x00",
	}
	for name, content := range want {
		if files[name] != content {
			t.Errorf("%s =\n%q\nwant\n%q", name, files[name], content)
		}
	}
	for _, f := range []string{"kernel/lib/a.ko", "kernel/drivers/b-x.ko", "kernel/drivers/c.ko"} {
		if _, ok := files[p+f]; !ok {
			t.Errorf("kernel.tar lacks %s", f)
		}
	}
	if _, ok := files[p+"kernel/drivers/other.ko"]; ok {
		t.Error("kernel.tar holds other.ko, which nothing needs")
	}
}

func compileModule(t *testing.T, out, modinfo string) {
	t.Helper()
	must(t, os.MkdirAll(filepath.Dir(out), 0o755))
	src := filepath.Join(t.TempDir(), "m.c")
	must(t, os.WriteFile(src, []byte(`__attribute__((section(".modinfo"), used)) static const char info[] = "`+modinfo+`";`+"\n"), 0o644))
	if b, err := exec.Command("gcc", "-c", "-o", out, src).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v: %s", err, b)
	}
}

// readTar returns the regular files of a tar by name.
func readTar(t *testing.T, r io.Reader) map[string]string {
	t.Helper()
	files := map[string]string{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			files[h.Name] = string(b)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

var epoch0 = time.Unix(0, 0).UTC()
