package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulkhead-dev/bulkhead/builder/resolve"
)

// signRecipes writes three files-only recipes (a kernel, an init, a
// service: the cheapest recipes that make a bootable spec) and returns
// their directories.
func signRecipes(t *testing.T) (kernel, init, web string) {
	t.Helper()
	dir := t.TempDir()
	modules := tarBytes(t, tarFile{"lib/modules/6.1.0-test/kernel/a.ko", "module a", 0o644})
	recipes := map[string]string{
		"tkernel": `name: tkernel
tag: t
files:
  - {path: /kernel, contents: "bzImage bytes"}
  - {path: /kernel.tar, source: kernel.tar}
`,
		"tinit": `name: tinit
tag: t
files:
  - {path: /init, contents: "#!init", mode: "0755"}
  - {path: /usr/bin/containerd, contents: "ctrd", mode: "0755"}
`,
		"tweb": `name: tweb
tag: t
files:
  - {path: /web, contents: "web binary", mode: "0755"}
  - {path: /etc/passwd, contents: "root:x:0:0::/:/web\n"}
config:
  entrypoint: [/web]
`,
	}
	for n, r := range recipes {
		if err := os.MkdirAll(filepath.Join(dir, n), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, n, "image.yml"), []byte(r), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "tkernel", "kernel.tar"), modules, 0o644); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "tkernel"), filepath.Join(dir, "tinit"), filepath.Join(dir, "tweb")
}

// signSpec writes a spec using the recipes' images whose trust policy
// requires keyName's signature on every bulkhead/ image.
func signSpec(t *testing.T, dir, file, keyName string) string {
	t.Helper()
	p := filepath.Join(dir, file)
	data := `kernel:
  image: bulkhead/tkernel:t
  cmdline: console=ttyS0
init:
  - bulkhead/tinit:t
services:
  - name: web
    image: bulkhead/tweb:t
    net: host
    readonly: true
trust:
  keys:
    - name: ` + keyName + `
      path: ` + keyName + `.pub
  require:
    - prefix: docker.io/bulkhead/
      keys: [` + keyName + `]
`
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// imageBuild runs `bulkhead image build` into store and returns the
// digest it printed for each image.
func imageBuild(t *testing.T, store string, args ...string) map[string]string {
	t.Helper()
	args = append([]string{"build", "--store", store}, args...)
	code, so, se := cli(t, imageCommand(), args...)
	if code != 0 {
		t.Fatalf("image %s: exit %d: %s", strings.Join(args, " "), code, se)
	}
	digests := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(so), "\n") {
		if f := strings.Fields(l); len(f) >= 2 {
			digests[f[0]] = f[1]
		}
	}
	return digests
}

// referrerCount counts the store's referrers of the image stored as ref.
func referrerCount(t *testing.T, store, ref string) int {
	t.Helper()
	s, err := resolve.OpenStore(store)
	if err != nil {
		t.Fatal(err)
	}
	h, ok, err := s.Lookup(ref)
	if err != nil || !ok {
		t.Fatalf("%s not in the store: %v", ref, err)
	}
	ds, err := s.Referrers(h)
	if err != nil {
		t.Fatal(err)
	}
	return len(ds)
}

// TestImageBuildSignKey: recipes built with --sign-key carry a signature in
// the store that a trust policy requiring that key accepts, offline; an
// unsigned recipe image or a policy requiring another key fails the build,
// naming the image, and writes nothing. Signing keeps the image digests and
// signing again (also of cached images) adds no second signature.
func TestImageBuildSignKey(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "")
	dir := t.TempDir()
	for _, k := range []string{"release", "other"} {
		args := []string{filepath.Join(dir, k)}
		if k == "other" {
			args = append([]string{"--alg", "ed25519"}, args...)
		}
		if code, _, se := cli(t, keygenCommand(), args...); code != 0 {
			t.Fatal(se)
		}
	}
	kernel, init, web := signRecipes(t)
	store := t.TempDir()
	releaseKey := filepath.Join(dir, "release.key")

	unsigned := imageBuild(t, store, web)
	signed := imageBuild(t, store, "--sign-key", releaseKey, kernel, init)
	spec := signSpec(t, dir, "host.yml", "release")
	out, stderr, code := buildOnce(t, store, spec, "--offline")
	if code != 1 || !strings.Contains(stderr, `image "bulkhead/tweb:t": signature: no signature`) {
		t.Fatalf("build with an unsigned recipe image: exit %d: %s", code, stderr)
	}
	if strings.Contains(stderr, "tkernel") || strings.Contains(stderr, "tinit") {
		t.Errorf("signed images refused: %s", stderr)
	}
	if ents, _ := os.ReadDir(out); len(ents) != 0 {
		t.Errorf("%d outputs after a refused build", len(ents))
	}

	// The key from the environment; web is cached, so it is only signed.
	pem := string(mustRead(t, releaseKey))
	t.Setenv("BULKHEAD_TEST_IMAGE_KEY", pem)
	again := imageBuild(t, store, "--sign-key", "env://BULKHEAD_TEST_IMAGE_KEY", kernel, init, web)
	for ref, d := range unsigned {
		signed[ref] = d
	}
	for ref, d := range signed {
		if again[ref] != d {
			t.Errorf("%s: digest %s after signing, %s before", ref, again[ref], d)
		}
		if n := referrerCount(t, store, ref); n != 1 {
			t.Errorf("%s: %d signatures after signing twice with one key", ref, n)
		}
	}
	if len(again) != 3 {
		t.Fatalf("image build printed %v", again)
	}

	out, stderr, code = buildOnce(t, store, spec, "--offline")
	if code != 0 {
		t.Fatalf("build of signed recipe images: exit %d: %s", code, stderr)
	}
	if ents, _ := os.ReadDir(out); len(ents) == 0 {
		t.Error("no outputs from a passing build")
	}

	other := signSpec(t, dir, "other.yml", "other")
	out, stderr, code = buildOnce(t, store, other, "--offline")
	if code != 1 {
		t.Fatalf("build requiring another key: exit %d: %s", code, stderr)
	}
	for _, ref := range []string{"bulkhead/tkernel:t", "bulkhead/tinit:t", "bulkhead/tweb:t"} {
		if !strings.Contains(stderr, `image "`+ref+`": signature: signed by another key`) {
			t.Errorf("build requiring another key does not name %s: %s", ref, stderr)
		}
	}
	if ents, _ := os.ReadDir(out); len(ents) != 0 {
		t.Errorf("%d outputs after a refused build", len(ents))
	}
}

// TestImageBuildSignKeyErrors: a bad key fails before anything is built.
func TestImageBuildSignKeyErrors(t *testing.T) {
	_, _, web := signRecipes(t)
	store := t.TempDir()
	t.Setenv("BULKHEAD_TEST_NO_KEY", "")
	for _, key := range []string{filepath.Join(t.TempDir(), "missing.key"), "env://BULKHEAD_TEST_NO_KEY"} {
		code, so, se := cli(t, imageCommand(), "build", "--store", store, "--sign-key", key, web)
		if code == 0 || so != "" || !strings.Contains(se, "reading signing key") {
			t.Errorf("--sign-key %s: exit %d, stdout %q, stderr %q", key, code, so, se)
		}
	}
	s, err := resolve.OpenStore(store)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.Lookup("bulkhead/tweb:t"); ok {
		t.Error("an image was stored although the key was bad")
	}
}
