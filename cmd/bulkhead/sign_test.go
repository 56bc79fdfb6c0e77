package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/bulkhead-dev/bulkhead/builder/build"
	"github.com/bulkhead-dev/bulkhead/builder/config"
	"github.com/bulkhead-dev/bulkhead/builder/resolve"
	"github.com/bulkhead-dev/bulkhead/builder/sign"
)

// cli runs one verb's run function, as main would, and returns its exit
// code and output.
func cli(t *testing.T, c command, args ...string) (int, string, string) {
	t.Helper()
	var so, se bytes.Buffer
	code := 0
	if err := c.run(context.Background(), args, &so, &se); err != nil {
		code = 1
		if ee, ok := err.(exitError); ok {
			code = ee.code
		} else {
			se.WriteString(err.Error())
		}
	}
	return code, so.String(), se.String()
}

// TestKeygenBuildSignVerify: keygen -> lock -> build + sign -> verify
// passes; one flipped byte fails exactly that artifact; the provenance
// names the lock file's digests.
func TestKeygenBuildSignVerify(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "")
	spec := fixture(t)
	store := t.TempDir()
	keys := filepath.Join(t.TempDir(), "release")
	if code, so, se := cli(t, keygenCommand(), keys); code != 0 || !strings.Contains(so, "key id sha256:") {
		t.Fatalf("keygen: %d %s %s", code, so, se)
	}
	if code, _, se := cli(t, keygenCommand(), keys); code == 0 {
		t.Fatal("keygen replaced an existing key")
	} else if !strings.Contains(se, "exists") {
		t.Errorf("keygen over a key: %s", se)
	}
	if code := run(context.Background(), []string{"lock", "--store", store, spec}, new(bytes.Buffer), new(bytes.Buffer)); code != 0 {
		t.Fatal("lock failed")
	}
	out := t.TempDir()
	f := buildFlags{out: out, name: "host", formats: "kernel+initrd", arch: "amd64", store: store, compression: "zstd", locked: true, signKey: keys + ".key"}
	if _, err := buildHost(context.Background(), []string{spec}, f, 0, new(bytes.Buffer), func(string, ...any) {}); err != nil {
		t.Fatal(err)
	}
	code, so, se := cli(t, verifyCommand(), "--key", keys+".pub", out)
	if code != 0 || strings.Count(so, "ok    ") != 9 { // 3 outputs, 4 reports, SHA256SUMS, provenance
		t.Fatalf("verify: exit %d\n%s%s", code, so, se)
	}

	checkProvenanceMatchesLock(t, out, resolve.LockPath(spec))

	// bulkhead sign on the existing outputs gives the same files.
	before := readDir(t, out)
	t.Setenv(signKeyEnv, string(mustRead(t, keys+".key")))
	if code, so, se := cli(t, signCommand(), "--spec", spec, out); code != 0 {
		t.Fatalf("sign: %d %s %s", code, so, se)
	}
	if after := readDir(t, out); !equalMaps(before, after) {
		t.Error("bulkhead sign and build --sign-key signed differently")
	}

	for _, target := range []string{"host-initrd.img", "host-kernel.sigstore.json", sign.ProvenanceFile} {
		path := filepath.Join(out, target)
		orig := mustRead(t, path)
		b := bytes.Clone(orig)
		b[len(b)/2] ^= 0x01
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		code, so, _ := cli(t, verifyCommand(), "--key", keys+".pub", out)
		owner := strings.TrimSuffix(target, sign.BundleSuffix)
		if code != 1 || strings.Count(so, "FAIL") != 1 || !strings.Contains(so, "FAIL  "+owner+":") {
			t.Errorf("flipped %s: exit %d\n%s", target, code, so)
		}
		if target == "host-initrd.img" && !strings.Contains(so, "FAIL  host-initrd.img: content changed (sha256 "+sha256Hex(b)+", signed "+sha256Hex(orig)+")\n") {
			t.Errorf("flipped %s: the line does not say the content changed:\n%s", target, so)
		}
		if err := os.WriteFile(path, orig, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// sha256Hex is the SHA-256 of b in hex.
func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// TestVerifyReportsUnsigned: a file beside signed outputs that no
// signature covers is listed (and fails with --strict); --json gives the
// same as objects.
func TestVerifyReportsUnsigned(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(t.TempDir(), "release")
	if code, _, se := cli(t, keygenCommand(), keys); code != 0 {
		t.Fatal(se)
	}
	key, err := loadSignKey(keys + ".key")
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{"host.tar": "signed", "extra.sh": "not signed"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := sign.SignArtifacts(context.Background(), dir, []string{"host.tar"}, key, sign.BuildInfo{}); err != nil {
		t.Fatal(err)
	}
	code, so, se := cli(t, verifyCommand(), "--key", keys+".pub", dir)
	if code != 0 || !strings.Contains(so, "unsigned extra.sh: no signature covers it (not in SHA256SUMS)\n") || strings.Count(so, "ok ") != 3 {
		t.Errorf("verify: exit %d\n%s%s", code, so, se)
	}
	if code, so, _ := cli(t, verifyCommand(), "--strict", "--key", keys+".pub", dir); code != 1 {
		t.Errorf("verify --strict: exit %d\n%s", code, so)
	}
	code, so, _ = cli(t, verifyCommand(), dir, "--json", "--key", keys+".pub")
	var lines []verifyLine
	if err := json.Unmarshal([]byte(so), &lines); code != 0 || err != nil || len(lines) != 4 || lines[3] != (verifyLine{Name: "extra.sh", Status: "unsigned", Error: "no signature covers it (not in SHA256SUMS)"}) {
		t.Errorf("verify --json: exit %d, %v, %+v", code, err, lines)
	}
}

func checkProvenanceMatchesLock(t *testing.T, out, lockPath string) {
	t.Helper()
	env, err := sign.ParseEnvelope(mustRead(t, filepath.Join(out, sign.ProvenanceFile)))
	if err != nil {
		t.Fatal(err)
	}
	st, subjects, err := sign.ParseStatement(env.Payload)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"host-kernel", "host-initrd.img", "host-cmdline"} {
		if subjects[n] != fileDigest(t, filepath.Join(out, n)) {
			t.Errorf("subject %s: %s", n, subjects[n])
		}
	}
	var pred sign.Provenance
	if err := json.Unmarshal(st.Predicate, &pred); err != nil {
		t.Fatal(err)
	}
	lock, err := resolve.LoadLock(lockPath)
	if err != nil {
		t.Fatal(err)
	}
	var want, got []string
	for _, e := range lock.Images {
		want = append(want, e.Ref+"="+e.Digest.Hex)
	}
	lockSeen := false
	for _, d := range pred.BuildDefinition.ResolvedDependencies {
		switch {
		case d.Name == filepath.Base(lockPath):
			lockSeen = d.Digest["sha256"] == fileDigest(t, lockPath)
		case d.Name != "host.yml":
			got = append(got, d.Name+"="+d.Digest["sha256"])
		}
	}
	sort.Strings(want)
	sort.Strings(got)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("provenance images\n  %v\nlock\n  %v", got, want)
	}
	if !lockSeen {
		t.Error("the provenance does not name the lock file by its digest")
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		out[e.Name()] = string(mustRead(t, filepath.Join(dir, e.Name())))
	}
	return out
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestCheckTrust: under a policy requiring a signature on every input, the
// fixture's unsigned images fail with their spec positions; signed, they
// pass and the lock records the key.
func TestCheckTrust(t *testing.T) {
	ctx := context.Background()
	spec := fixture(t)
	data := string(mustRead(t, spec))
	host := strings.TrimSuffix(strings.TrimPrefix(strings.Split(data, "\n")[1], "  image: "), "/test/kernel:1")
	keys := filepath.Join(filepath.Dir(spec), "release")
	if code, _, se := cli(t, keygenCommand(), keys); code != 0 {
		t.Fatal(se)
	}
	data += "trust:\n  keys:\n    - name: release\n      path: release.pub\n  require:\n    - prefix: " + host + "/\n      keys: [release]\n"
	if err := os.WriteFile(spec, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := loadSpec(spec)
	if err != nil {
		t.Fatal(err)
	}
	store, err := resolve.OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r, err := resolve.NewResolver(resolve.WithStore(store))
	if err != nil {
		t.Fatal(err)
	}
	refs := build.Refs(s)
	imgs, err := r.ResolveAll(ctx, build.RefStrings(refs))
	if err != nil {
		t.Fatal(err)
	}
	p := v1.Platform{OS: "linux", Architecture: "amd64"}
	_, err = build.CheckTrust(ctx, s, refs, imgs, nil, p, store, false, false)
	if err == nil {
		t.Fatal("unsigned images passed")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], spec+":2:10: image \""+host+"/test/kernel:1\": signature: no signature") {
		t.Fatalf("errors:\n%s", err)
	}
	key, err := loadSignKey(keys + ".key")
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range imgs {
		d, err := nameDigest(img)
		if err != nil {
			t.Fatal(err)
		}
		if err := sign.SignImageRemote(ctx, key, d); err != nil {
			t.Fatal(err)
		}
	}
	ids, err := build.CheckTrust(ctx, s, refs, imgs, nil, p, store, false, false)
	if err != nil {
		t.Fatal(err)
	}
	lock := &resolve.Lock{Version: resolve.LockVersion}
	for _, img := range imgs {
		lock.Pin(img, p)
	}
	pinKeys(lock, refs, ids, p)
	for _, e := range lock.Images {
		if e.Key != key.Public().ID() {
			t.Errorf("%s: key %q", e.Ref, e.Key)
		}
	}
	// Pinned by the lock, the images pass under a pinned policy, offline.
	if _, err := build.CheckTrust(ctx, s, refs, imgs, lock, p, store, true, true); err != nil {
		t.Fatal(err)
	}
	if _, err := build.CheckTrust(ctx, s, refs, imgs, nil, p, store, true, true); err == nil || !strings.Contains(err.Error(), "not pinned by digest") {
		t.Fatalf("unpinned under --locked: %v", err)
	}
}

func loadSpec(path string) (*config.Spec, error) { return config.Load(path) }

func nameDigest(img *resolve.Image) (name.Digest, error) {
	ref, err := name.ParseReference(img.Name)
	if err != nil {
		return name.Digest{}, err
	}
	return ref.Context().Digest(img.Digest.String()), nil
}
