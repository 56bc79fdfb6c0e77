package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulkhead-dev/bulkhead/builder/resolve"
)

// cloneStore copies the component image store cheaply: blobs and caches
// are hard links (the store writes new files and renames, never in place),
// index.json a real copy, so signing in the clone leaves the original as
// it was.
func cloneStore(t *testing.T) string {
	t.Helper()
	src, err := resolve.DefaultStoreDir()
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "store")
	if out, err := exec.Command("cp", "-al", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("cloning the store: %v\n%s", err, out)
	}
	index, err := os.ReadFile(filepath.Join(src, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dst, "index.json")
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, index, 0o644); err != nil {
		t.Fatal(err)
	}
	return dst
}

// bh runs the CLI and returns its exit error and output.
func bh(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(bulkhead, args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// TestExampleUnderSigningPolicy: the bundled example builds under a trust
// policy that requires a signature on every input once `image build
// --sign-key` has signed the component images, and fails, naming the
// images and writing nothing, when the policy requires another key.
func TestExampleUnderSigningPolicy(t *testing.T) {
	store := cloneStore(t)
	dir := t.TempDir()
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"release", "other"} {
		if out, err := bh(t, dir, "keygen", k); err != nil {
			t.Fatalf("keygen %s: %v\n%s", k, err, out)
		}
	}
	policy := func(key string) string {
		p := filepath.Join(dir, key+"-trust.yml")
		data := "trust:\n  keys:\n    - name: " + key + "\n      path: " + filepath.Join(dir, key+".pub") +
			"\n  require:\n    - prefix: docker.io/bulkhead/\n      keys: [" + key + "]\n"
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	spec := filepath.Join(repo, "examples", "minimal.yml")
	build := func(key, out string) (string, error) {
		return bh(t, dir, "build", "--store", store, "--offline", "--format", "raw-efi,kernel+initrd", "-o", out, spec, policy(key))
	}

	out, err := build("release", filepath.Join(dir, "unsigned"))
	if err == nil || !strings.Contains(out, "signature: no signature") {
		t.Fatalf("build of unsigned images: %v\n%s", err, out)
	}
	assertNoOutput(t, filepath.Join(dir, "unsigned"))

	recipes := []string{"init", "runc", "kernel", "oneshot", "hello", "systemd-boot"}
	args := []string{"image", "build", "--store", store, "--sign-key", filepath.Join(dir, "release.key")}
	for _, r := range recipes {
		args = append(args, filepath.Join(repo, "images", r))
	}
	if out, err := bh(t, repo, args...); err != nil || strings.Count(out, "signed by sha256:") != len(recipes) {
		t.Fatalf("image build --sign-key: %v\n%s", err, out)
	}

	if out, err := build("release", filepath.Join(dir, "signed")); err != nil {
		t.Fatalf("build under the policy: %v\n%s", err, out)
	}
	for _, f := range []string{"minimal.img", "minimal-kernel", "minimal-initrd.img"} {
		if _, err := os.Stat(filepath.Join(dir, "signed", f)); err != nil {
			t.Error(err)
		}
	}

	out, err = build("other", filepath.Join(dir, "other"))
	if err == nil || strings.Count(out, "signature: signed by another key") < len(recipes) {
		t.Fatalf("build requiring another key: %v\n%s", err, out)
	}
	assertNoOutput(t, filepath.Join(dir, "other"))
}

// assertNoOutput checks that a failed build left no artifact in dir.
func assertNoOutput(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) > 0 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("a failed build left %v in %s", names, dir)
	}
}
