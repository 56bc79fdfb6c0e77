package resolve

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/bulkhead-dev/bulkhead/internal/regfile"
)

func TestLockPath(t *testing.T) {
	for in, want := range map[string]string{
		"host.yml":         "host.lock",
		"a/b/host.yaml":    "a/b/host.lock",
		"linuxkit":         "linuxkit.lock",
		"dir.yml/host.yml": "dir.yml/host.lock",
	} {
		if got := LockPath(in); got != want {
			t.Errorf("LockPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLockRoundTripIsDeterministic(t *testing.T) {
	idx := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("1", 64)}
	entries := []LockEntry{
		{Ref: "redis", Name: "docker.io/library/redis:latest", Digest: v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("a", 64)}, Index: &idx, Platform: "linux/amd64"},
		{Ref: "redis", Name: "docker.io/library/redis:latest", Digest: v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("b", 64)}, Index: &idx, Platform: "linux/arm64"},
		{Ref: "alpine:3.20", Name: "docker.io/library/alpine:3.20", Digest: v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("c", 64)}, Platform: "linux/amd64", Key: "ci-2025"},
	}
	dir := t.TempDir()
	var files [][]byte
	for i, order := range [][]int{{0, 1, 2}, {2, 1, 0}} {
		l := &Lock{}
		for _, j := range order {
			l.Set(entries[j])
		}
		path := filepath.Join(dir, []string{"a.lock", "b.lock"}[i])
		if err := l.Write(path); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, b)
	}
	if !bytes.Equal(files[0], files[1]) {
		t.Fatalf("lock files differ with insertion order:\n%s\n%s", files[0], files[1])
	}
	l, err := LoadLock(filepath.Join(dir, "a.lock"))
	if err != nil {
		t.Fatalf("%v\n%s", err, files[0])
	}
	if len(l.Images) != 3 || l.Images[0].Ref != "alpine:3.20" || l.Images[0].Key != "ci-2025" {
		t.Fatalf("loaded %+v", l.Images)
	}
	e, ok := l.Find("redis", v1.Platform{OS: "linux", Architecture: "arm64"})
	if !ok || e.Digest != entries[1].Digest || e.Index == nil || *e.Index != idx {
		t.Fatalf("Find: %+v %v", e, ok)
	}
	if _, ok := l.Find("redis", v1.Platform{OS: "linux", Architecture: "riscv64"}); ok {
		t.Fatal("found an entry for a platform never locked")
	}
	// Unknown fields and other versions are refused.
	bad := filepath.Join(dir, "bad.lock")
	os.WriteFile(bad, []byte("version: 1\nimages:\n  - ref: x\n    digets: sha256:00\n"), 0o644)
	if _, err := LoadLock(bad); err == nil || !strings.Contains(err.Error(), "digets") {
		t.Fatalf("unknown field: %v", err)
	}
	os.WriteFile(bad, []byte("version: 2\nimages: []\n"), 0o644)
	if _, err := LoadLock(bad); err == nil || !strings.Contains(err.Error(), "version 2") {
		t.Fatalf("version: %v", err)
	}
	if l, err := LoadLockIfExists(filepath.Join(dir, "none.lock")); err != nil || len(l.Images) != 0 {
		t.Fatalf("missing lock: %v %v", l, err)
	}
}

func TestLockedResolution(t *testing.T) {
	reg := newRegistry(t)
	ref := reg.host + "/app:stable"
	idx1, amd1, _ := twoPlatforms(t)
	reg.pushIndex(t, "app:stable", idx1)
	store := newStore(t)
	ctx := context.Background()

	// Lock the tag as it is now.
	img, err := newResolver(t, WithStore(store)).Resolve(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	amd64 := v1.Platform{OS: "linux", Architecture: "amd64"}
	lock := &Lock{}
	lock.Pin(img, amd64)
	path := filepath.Join(t.TempDir(), "host.lock")
	if err := lock.Write(path); err != nil {
		t.Fatal(err)
	}
	lock, err = LoadLock(path)
	if err != nil {
		t.Fatal(err)
	}

	// The tag moves.
	moved := reg.push(t, "app:stable", testImage(t, "amd64", tarOf(t, "v", "2")))

	got, err := newResolver(t, WithStore(newStore(t)), WithLock(lock), WithLocked(true)).Resolve(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if got.Digest != digestOf(t, amd1) || got.Index == nil || *got.Index != *img.Index || got.Name != ref {
		t.Fatalf("locked resolution gave %s (index %v), want the locked %s", got.Digest, got.Index, digestOf(t, amd1))
	}
	got, err = newResolver(t, WithStore(store)).Resolve(ctx, ref)
	if err != nil || got.Digest != moved {
		t.Fatalf("unlocked resolution: %v %v, want the moved tag %s", got, err, moved)
	}

	// A reference the lock does not pin.
	_, err = newResolver(t, WithStore(store), WithLock(lock), WithLocked(true)).Resolve(ctx, reg.host+"/app:other")
	if !errors.Is(err, ErrNotPinned) || !strings.Contains(err.Error(), "image "+reg.host+"/app:other is not pinned by the lock file") {
		t.Fatalf("unpinned: %v", err)
	}
	// Not locked: an unpinned reference resolves normally.
	reg.push(t, "app:other", testImage(t, "amd64", tarOf(t, "o", "o")))
	if _, err := newResolver(t, WithStore(store), WithLock(lock)).Resolve(ctx, reg.host+"/app:other"); err != nil {
		t.Fatal(err)
	}
	// Another platform is not pinned by an amd64 lock.
	arm := WithPlatform(v1.Platform{OS: "linux", Architecture: "arm64"})
	if _, err := newResolver(t, WithStore(store), WithLock(lock), WithLocked(true), arm).Resolve(ctx, ref); !errors.Is(err, ErrNotPinned) {
		t.Fatalf("arm64 under an amd64 lock: %v", err)
	}

	// A digest reference that disagrees with its pin.
	byDigest := reg.host + "/app@" + moved.String()
	bad := &Lock{}
	bad.Set(LockEntry{Ref: byDigest, Name: byDigest, Digest: img.Digest, Platform: "linux/amd64"})
	_, err = newResolver(t, WithStore(store), WithLock(bad)).Resolve(ctx, byDigest)
	if err == nil || !strings.Contains(err.Error(), "the reference names "+moved.String()+" but the lock file pins "+img.Digest.String()) {
		t.Fatalf("digest mismatch: %v", err)
	}
	// An entry whose name does not match the reference.
	bad = &Lock{}
	bad.Set(LockEntry{Ref: ref, Name: reg.host + "/elsewhere:stable", Digest: img.Digest, Platform: "linux/amd64"})
	if _, err := newResolver(t, WithStore(store), WithLock(bad)).Resolve(ctx, ref); err == nil || !strings.Contains(err.Error(), "lock file pins it as") {
		t.Fatalf("name mismatch: %v", err)
	}
	// A pin the registry does not have.
	bad = &Lock{}
	ghost := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("e", 64)}
	bad.Set(LockEntry{Ref: ref, Name: ref, Digest: ghost, Platform: "linux/amd64"})
	if _, err := newResolver(t, WithStore(store), WithLock(bad)).Resolve(ctx, ref); !errors.Is(err, ErrNotFound) {
		t.Fatalf("pinned digest missing from the registry: %v", err)
	}

	if _, err := NewResolver(WithLocked(true)); err == nil {
		t.Fatal("locked resolution without a lock was accepted")
	}
}

func TestLoadLockRefusesSpecialFiles(t *testing.T) {
	p := filepath.Join(t.TempDir(), "host.lock")
	if err := os.Symlink("/dev/zero", p); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadLock(p); !errors.Is(err, regfile.ErrNotRegular) {
		t.Fatalf("lock file linked to /dev/zero: %v", err)
	}
}
