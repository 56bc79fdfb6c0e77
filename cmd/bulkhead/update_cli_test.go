package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/builder/bundler"
	"github.com/bulkhead-dev/bulkhead/builder/rootfs"
	"github.com/bulkhead-dev/bulkhead/builder/rootimg"
	"github.com/bulkhead-dev/bulkhead/builder/sign"
)

// smallBundle writes a bundle of a tiny root, signed by a new key, and
// returns its path and the public key's path.
func smallBundle(t *testing.T, expires time.Time) (bundle, pub string) {
	t.Helper()
	dir := t.TempDir()
	tr := rootfs.New()
	tr.Put(&rootfs.Entry{Path: "etc/hostname", Kind: rootfs.KindFile, Mode: 0o644, Size: 5, Content: rootfs.Content{Data: []byte("tiny\n")}})
	root := filepath.Join(dir, "root.img")
	f, err := os.Create(root)
	if err != nil {
		t.Fatal(err)
	}
	img, err := rootimg.Write(t.Context(), tr, f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	priv, pubPEM, err := sign.GenerateKey(sign.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	key, err := sign.ParsePrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	pub = filepath.Join(dir, "update.pub")
	writeTestFile(t, pub, pubPEM)
	bundle = filepath.Join(dir, "tiny.bundle")
	in := bundler.Input{
		Host: "tiny", Version: "2.0.0", Arch: "amd64", Created: time.Unix(0, 0), Expires: expires,
		Root: root, Verity: img.Verity, Kernel: []byte("kernel"), Initrd: []byte("initrd"),
		Options: img.Verity.Cmdline(), Tries: 3,
	}
	if _, err := bundler.Write(t.Context(), bundle, in, key); err != nil {
		t.Fatal(err)
	}
	return bundle, pub
}

func runCLI(args ...string) (stdout, stderr string, code int) {
	var so, se bytes.Buffer
	code = run(context.Background(), args, &so, &se)
	return so.String(), se.String(), code
}

func TestUpdateInspectAndVerify(t *testing.T) {
	bundle, pub := smallBundle(t, time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC))
	out, se, code := runCLI("update", "inspect", bundle)
	if code != 0 || !strings.Contains(out, "version         2.0.0") || !strings.Contains(out, "not checked") {
		t.Fatalf("inspect: exit %d\n%s%s", code, out, se)
	}
	out, _, code = runCLI("update", "inspect", "--json", bundle)
	var info bundleInfo
	if code != 0 || json.Unmarshal([]byte(out), &info) != nil || info.Manifest.Version != "2.0.0" || !info.Unverified {
		t.Fatalf("inspect --json: exit %d\n%s", code, out)
	}
	if out, _, code = runCLI("update", "verify", "--key", pub, bundle); code != 0 || !strings.HasPrefix(out, "ok ") {
		t.Fatalf("verify: exit %d\n%s", code, out)
	}
	_, other := smallBundle(t, time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC))
	if out, _, code = runCLI("update", "verify", "--key", other, bundle); code != 1 || !strings.Contains(out, "not signed by a trusted key") {
		t.Fatalf("verify with another key: exit %d\n%s", code, out)
	}
	b, _ := os.ReadFile(bundle)
	writeTestFile(t, bundle, b[:len(b)-3])
	if out, _, code = runCLI("update", "verify", "--key", pub, bundle); code != 1 || !strings.Contains(out, "truncated") {
		t.Fatalf("verify a truncated bundle: exit %d\n%s", code, out)
	}
	expired, pub2 := smallBundle(t, time.Unix(3600, 0))
	if out, _, code = runCLI("update", "verify", "--key", pub2, expired); code != 1 || !strings.Contains(out, "expired") {
		t.Fatalf("verify an expired bundle: exit %d\n%s", code, out)
	}
	if _, _, code = runCLI("update", "frobnicate"); code != 2 {
		t.Fatalf("unknown subcommand: exit %d", code)
	}
}

// TestBuildUpdateNeeds: a build of the update format stops before it
// resolves anything when the bundle could not be made.
func TestBuildUpdateNeeds(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "1000")
	dir := t.TempDir()
	spec := filepath.Join(dir, "host.yml")
	writeTestFile(t, spec, []byte("kernel:\n  image: nowhere.invalid/kernel:1\ninit:\n  - nowhere.invalid/init:1\n"))
	versioned := filepath.Join(dir, "v.yml")
	writeTestFile(t, versioned, []byte("kernel:\n  image: nowhere.invalid/kernel:1\ninit:\n  - nowhere.invalid/init:1\nboot:\n  version: 1.0.0\nupdate:\n  expires: 1970-01-01\n"))
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{spec}, 2, "must be signed"},
		{[]string{"--sign-key", "k", spec}, 1, "needs boot.version"},
		{[]string{"--sign-key", "k", versioned}, 1, "v.yml:8:12: update.expires: 1970-01-01T00:00:00Z is not after the build time"},
		{[]string{"--sign-key", "k", "--expires", "soon", versioned}, 1, "--expires: expected a time"},
	} {
		out := filepath.Join(dir, "out")
		_, se, code := runCLI(append([]string{"build", "--offline", "--store", t.TempDir(), "--format", "update", "-o", out}, c.args...)...)
		if code != c.code || !strings.Contains(se, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", c.args, code, se, c.code, c.want)
		}
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Errorf("%v: output directory made", c.args)
		}
	}
}
