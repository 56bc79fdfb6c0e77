package recipe

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// aptCandidate is apt's own word on pkg's candidate: the oracle.
func aptCandidate(t *testing.T, pkg string) debPackage {
	t.Helper()
	out, err := exec.Command("apt-cache", "show", "--no-all-versions", pkg).Output()
	if err != nil {
		t.Fatalf("apt-cache show %s: %v", pkg, err)
	}
	return parseStanza(out)
}

// TestBuildPinned: a pinned package builds from the pin and records it;
// the .deb in the cache then builds without apt; a pin apt no longer
// serves fails saying how to move it; a wrong sha256 fails before any
// download.
func TestBuildPinned(t *testing.T) {
	want := aptCandidate(t, "netbase")
	dir := t.TempDir()
	recipe := func(version, sum string) *Recipe {
		t.Helper()
		y := "name: deb\ntag: v1\ndebian:\n  - package: netbase\n    version: \"" + version + "\"\n    sha256: " + sum + "\n    paths: [/etc/protocols]\n"
		must(t, os.WriteFile(filepath.Join(dir, FileName), []byte(y), 0o644))
		r, err := Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	cache := t.TempDir()
	img, err := Build(context.Background(), recipe(want.version, want.sha256), WithCacheDir(cache))
	if err != nil {
		t.Fatal(err)
	}
	m, _ := img.Manifest()
	var debs []DebianInput
	json.Unmarshal([]byte(m.Annotations[AnnotationDebian]), &debs)
	if len(debs) != 1 || debs[0] != (DebianInput{Package: "netbase", Version: want.version, Arch: "all", SHA256: want.sha256}) {
		t.Fatalf("debian annotation %+v", debs)
	}
	d1, _ := img.Digest()

	// The cached .deb is enough: no apt on the PATH, only what unpacks.
	path := os.Getenv("PATH")
	noApt := t.TempDir()
	for _, tool := range []string{"dpkg-deb", "tar"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Fatal(err)
		}
		must(t, os.Symlink(p, filepath.Join(noApt, tool)))
	}
	t.Setenv("PATH", noApt)
	img, err = Build(context.Background(), recipe(want.version, want.sha256), WithCacheDir(cache))
	if err != nil {
		t.Fatalf("build from the cache without apt: %v", err)
	}
	if d2, _ := img.Digest(); d2 != d1 {
		t.Fatalf("digest %s from the cache, %s from apt", d2, d1)
	}
	os.Setenv("PATH", path)

	_, err = Build(context.Background(), recipe("0.0-gone", want.sha256), WithCacheDir(cache))
	if err == nil || !strings.Contains(err.Error(), "pinned netbase=0.0-gone is no longer served by apt: run scripts/bump-pins") {
		t.Errorf("gone pin: %v", err)
	}
	wrong := strings.Repeat("0", 64)
	_, err = Build(context.Background(), recipe(want.version, wrong), WithCacheDir(t.TempDir()))
	if err == nil || !strings.Contains(err.Error(), "the recipe pins "+wrong) {
		t.Errorf("wrong sha256: %v", err)
	}
}

// TestBump moves stale pins of copies of our own recipes to apt's
// candidates, rewriting only the pinned values, and a second bump moves
// nothing.
func TestBump(t *testing.T) {
	kernelWant := aptCandidate(t, "linux-image-cloud-amd64")
	var kpkg string
	for _, d := range kernelWant.depends {
		if versionedKernel.MatchString(d) {
			kpkg = d
		}
	}
	kernel := aptCandidate(t, kpkg)
	boot := aptCandidate(t, "systemd-boot-efi")
	stale := strings.Repeat("ab", 32)
	dir := t.TempDir()
	for _, name := range []string{"kernel", "systemd-boot"} {
		src, err := os.ReadFile(filepath.Join("../../images", name, FileName))
		if err != nil {
			t.Fatal(err)
		}
		must(t, os.MkdirAll(filepath.Join(dir, name), 0o755))
		must(t, os.WriteFile(filepath.Join(dir, name, FileName), staleCopy(t, src, stale), 0o644))
	}
	before, _ := os.ReadFile(filepath.Join(dir, "kernel", FileName))

	pins, err := Bump(context.Background(), filepath.Join(dir, "kernel"), SystemAptCache)
	if err != nil {
		t.Fatal(err)
	}
	if len(pins) != 1 || !pins[0].Changed() || pins[0].OldPackage != "linux-image-6.1.0-1-cloud-amd64" ||
		pins[0].Package != kpkg || pins[0].Version != kernel.version || pins[0].SHA256 != kernel.sha256 {
		t.Fatalf("kernel pins %+v, apt says %s=%s %s", pins, kpkg, kernel.version, kernel.sha256)
	}
	after, _ := os.ReadFile(filepath.Join(dir, "kernel", FileName))
	if diff := changedLines(before, after); diff != 3 {
		t.Errorf("bump changed %d lines, want 3 (package, version, sha256):\n%s", diff, after)
	}
	r, err := Load(filepath.Join(dir, "kernel"))
	if err != nil || r.Kernel.Package != kpkg || r.Kernel.Version != kernel.version || r.Kernel.SHA256 != kernel.sha256 {
		t.Fatalf("bumped kernel recipe: %+v, %v", r, err)
	}

	pins, err = Bump(context.Background(), filepath.Join(dir, "systemd-boot", FileName), SystemAptCache)
	if err != nil || len(pins) != 1 || pins[0].Version != boot.version || pins[0].SHA256 != boot.sha256 {
		t.Fatalf("systemd-boot pins %+v, %v; apt says %s %s", pins, err, boot.version, boot.sha256)
	}
	again, err := Bump(context.Background(), filepath.Join(dir, "systemd-boot"), SystemAptCache)
	if err != nil || len(again) != 1 || again[0].Changed() {
		t.Fatalf("second bump: %+v, %v", again, err)
	}
}

// staleCopy sets a recipe's pins to old values.
func staleCopy(t *testing.T, src []byte, sum string) []byte {
	t.Helper()
	var out []string
	for _, l := range strings.Split(string(src), "\n") {
		k, _, _ := strings.Cut(strings.TrimSpace(l), ":")
		indent := l[:len(l)-len(strings.TrimLeft(l, " "))]
		switch {
		case k == "package" && strings.HasPrefix(strings.TrimSpace(l), "package: linux-image-6"):
			l = indent + "package: linux-image-6.1.0-1-cloud-amd64"
		case k == "version":
			l = indent + "version: 0.1-1"
		case k == "sha256":
			l = indent + "sha256: " + sum
		}
		out = append(out, l)
	}
	return []byte(strings.Join(out, "\n"))
}

func changedLines(a, b []byte) int {
	la, lb := bytes.Split(a, []byte("\n")), bytes.Split(b, []byte("\n"))
	if len(la) != len(lb) {
		return -1
	}
	n := 0
	for i := range la {
		if !bytes.Equal(la[i], lb[i]) {
			n++
		}
	}
	return n
}
