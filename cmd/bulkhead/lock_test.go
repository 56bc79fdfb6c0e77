package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulkhead-dev/bulkhead/builder/resolve"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// pushMultiPlatform pushes an amd64+arm64 index to repo:tag and returns the
// platform image digests by architecture.
func pushMultiPlatform(t *testing.T, host, ref string) map[string]v1.Hash {
	t.Helper()
	idx := v1.ImageIndex(empty.Index)
	digests := map[string]v1.Hash{}
	for _, arch := range []string{"amd64", "arm64"} {
		img, err := random.Image(256, 1)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		cfg = cfg.DeepCopy()
		cfg.OS, cfg.Architecture = "linux", arch
		if img, err = mutate.ConfigFile(img, cfg); err != nil {
			t.Fatal(err)
		}
		if digests[arch], err = img.Digest(); err != nil {
			t.Fatal(err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	n, err := name.ParseReference(host + "/" + ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(n, idx); err != nil {
		t.Fatal(err)
	}
	return digests
}

func TestLock(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	want := map[string]map[string]v1.Hash{}
	for _, ref := range []string{"kernel:6.6", "init:v1", "sysctl:v1", "getty:v1", "vol:v1"} {
		want[host+"/"+ref] = pushMultiPlatform(t, host, ref)
	}
	dir := t.TempDir()
	spec := filepath.Join(dir, "host.yml")
	writeLockSpec(t, spec, fmt.Sprintf(`kernel:
  image: %[1]s/kernel:6.6
  cmdline: console=ttyS0
init:
  - %[1]s/init:v1
onboot:
  - name: sysctl
    image: %[1]s/sysctl:v1
services:
  - name: getty
    image: %[1]s/getty:v1
  - name: getty2
    image: %[1]s/getty:v1
volumes:
  - name: data
    image: %[1]s/vol:v1
`, host))
	store := filepath.Join(dir, "store")

	for _, arch := range []string{"amd64", "arm64"} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), []string{"lock", "--arch", arch, "--store", store, spec}, &stdout, &stderr); code != 0 {
			t.Fatalf("lock --arch %s: exit %d: %s", arch, code, stderr.String())
		}
		var wantOut string
		for _, ref := range []string{"kernel:6.6", "init:v1", "sysctl:v1", "getty:v1", "vol:v1"} {
			wantOut += fmt.Sprintf("%s/%s %s\n", host, ref, want[host+"/"+ref][arch])
		}
		if stdout.String() != wantOut {
			t.Errorf("stdout:\n%s\nwant:\n%s", stdout.String(), wantOut)
		}
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"lock", spec, "--json", "--store", store}, &stdout, &stderr); code != 0 {
		t.Fatalf("lock --json: exit %d: %s", code, stderr.String())
	}
	var pins []lockPin
	if err := json.Unmarshal(stdout.Bytes(), &pins); err != nil || len(pins) != 5 {
		t.Fatalf("lock --json: %v: %s", err, stdout.String())
	}
	if p := pins[0]; p.Ref != host+"/kernel:6.6" || p.Digest != want[p.Ref]["amd64"].String() || p.Platform != "linux/amd64" || p.Lock != filepath.Join(dir, "host.lock") {
		t.Errorf("lock --json: first pin %+v", p)
	}
	lock, err := resolve.LoadLock(filepath.Join(dir, "host.lock"))
	if err != nil {
		t.Fatal(err)
	}
	if len(lock.Images) != 10 {
		t.Fatalf("lock has %d entries, want 5 refs x 2 platforms: %+v", len(lock.Images), lock.Images)
	}
	for ref, byArch := range want {
		for arch, d := range byArch {
			e, ok := lock.Find(ref, v1.Platform{OS: "linux", Architecture: arch})
			if !ok || e.Digest != d || e.Index == nil || e.Name != ref {
				t.Errorf("%s %s: entry %+v, want digest %s", ref, arch, e, d)
			}
		}
	}
}

func TestLockErrorsCarrySpecPositions(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	host := strings.TrimPrefix(srv.URL, "http://")
	pushMultiPlatform(t, host, "init:v1")
	dir := t.TempDir()
	spec := filepath.Join(dir, "host.yml")
	writeLockSpec(t, spec, fmt.Sprintf(`init:
  - %[1]s/init:v1
services:
  - name: web
    image: %[1]s/missing:v1
`, host))
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"lock", "--store", filepath.Join(dir, "store"), spec}, &stdout, &stderr)
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr %s", code, stderr.String())
	}
	prefix := fmt.Sprintf("%s:5:12: resolving image %q: ", spec, host+"/missing:v1")
	if got := stderr.String(); !strings.HasPrefix(got, prefix) || !strings.Contains(got, "image not found") || strings.Count(got, "\n") != 1 {
		t.Fatalf("stderr %q, want one line starting %q", got, prefix)
	}
	if _, err := os.Stat(filepath.Join(dir, "host.lock")); !os.IsNotExist(err) {
		t.Fatalf("a lock file was written despite the error: %v", err)
	}

	// The registry goes away: the error names it, at the reference.
	srv.Close()
	stderr.Reset()
	run(context.Background(), []string{"lock", "--store", filepath.Join(dir, "store2"), spec}, &stdout, &stderr)
	if got := stderr.String(); !strings.Contains(got, fmt.Sprintf("%s:2:5: resolving image %q: not in the image store", spec, host+"/init:v1")) ||
		!strings.Contains(got, fmt.Sprintf("registry %s is unreachable", host)) {
		t.Fatalf("stderr %q", got)
	}
}

func TestLockUsage(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"lock"}, &stdout, &stderr); code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
}

func writeLockSpec(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}
