package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/bulkhead-dev/bulkhead/builder/resolve"
	"github.com/bulkhead-dev/bulkhead/builder/sign"
)

// TestBuildUnderTrustPolicy: with a policy requiring a signature on every
// input, an unsigned or wrongly signed input fails lock and build, naming
// the spec line, and leaves no output; signed, lock records the key and
// build --locked --sign-key writes outputs that verify.
func TestBuildUnderTrustPolicy(t *testing.T) {
	ctx := context.Background()
	spec := fixture(t)
	data := string(mustRead(t, spec))
	host := strings.TrimSuffix(strings.TrimPrefix(strings.Split(data, "\n")[1], "  image: "), "/test/kernel:1")
	dir := filepath.Dir(spec)
	for _, k := range []string{"release", "other"} {
		if code, _, se := cli(t, keygenCommand(), filepath.Join(dir, k)); code != 0 {
			t.Fatal(se)
		}
	}
	data += "trust:\n  keys:\n    - name: release\n      path: release.pub\n  require:\n    - prefix: " + host + "/\n      keys: [release]\n"
	if err := os.WriteFile(spec, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	store := t.TempDir()
	var so, se bytes.Buffer
	if code := run(ctx, []string{"lock", "--store", store, spec}, &so, &se); code != 1 || !strings.Contains(se.String(), spec+":2:10: image") || !strings.Contains(se.String(), "signature: no signature") {
		t.Fatalf("lock of unsigned images: exit %d, %s", code, se.String())
	}
	if _, err := os.Stat(resolve.LockPath(spec)); err == nil {
		t.Fatal("a refused lock wrote the lock file")
	}
	out, stderr, code := buildOnce(t, store, spec)
	if code != 1 || !strings.Contains(stderr, "signature: no signature") {
		t.Fatalf("build of unsigned images: exit %d, %s", code, stderr)
	}
	if ents, _ := os.ReadDir(out); len(ents) != 0 {
		t.Errorf("%d outputs after a refused build", len(ents))
	}
	signAll := func(keyFile string) {
		key, err := loadSignKey(filepath.Join(dir, keyFile))
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range []string{"test/kernel:1", "test/init:1", "test/web:1"} {
			ref, _ := name.ParseReference(host + "/" + r)
			d, err := remoteDigest(ref)
			if err != nil {
				t.Fatal(err)
			}
			if err := sign.SignImageRemote(ctx, key, d); err != nil {
				t.Fatal(err)
			}
		}
	}
	signAll("other.key")
	out, stderr, code = buildOnce(t, store, spec)
	if code != 1 || !strings.Contains(stderr, "signature: signed by another key") {
		t.Fatalf("build of images signed by another key: exit %d, %s", code, stderr)
	}
	if ents, _ := os.ReadDir(out); len(ents) != 0 {
		t.Errorf("%d outputs after a refused build", len(ents))
	}
	signAll("release.key")
	so.Reset()
	se.Reset()
	if code := run(ctx, []string{"lock", "--store", store, spec}, &so, &se); code != 0 {
		t.Fatalf("lock: %s", se.String())
	}
	lock, err := resolve.LoadLock(resolve.LockPath(spec))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := sign.LoadPublicKey(filepath.Join(dir, "release.pub"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range lock.Images {
		if e.Key != pub.ID() {
			t.Errorf("lock entry %s: key %q", e.Ref, e.Key)
		}
	}
	out, stderr, code = buildOnce(t, store, spec, "--locked", "--offline", "--sign-key", filepath.Join(dir, "release.key"))
	if code != 0 {
		t.Fatalf("signed build: %s", stderr)
	}
	if code, so, _ := cli(t, verifyCommand(), "--key", filepath.Join(dir, "release.pub"), out); code != 0 {
		t.Fatalf("verify: %s", so)
	}
	checkProvenanceMatchesLock(t, out, resolve.LockPath(spec))
}

func remoteDigest(ref name.Reference) (name.Digest, error) {
	desc, err := remoteHead(ref)
	if err != nil {
		return name.Digest{}, err
	}
	return ref.Context().Digest(desc), nil
}

func remoteHead(ref name.Reference) (string, error) {
	d, err := remote.Head(ref)
	if err != nil {
		return "", err
	}
	return d.Digest.String(), nil
}
