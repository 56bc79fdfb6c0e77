package sign

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"
)

var artifacts = map[string]string{
	"host-kernel":     "kernel bytes\x00\x01",
	"host-initrd.img": strings.Repeat("initrd", 1000),
	"host-cmdline":    "console=ttyS0\n",
}

func artifactNamesSorted() []string {
	var names []string
	for n := range artifacts {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func newKey(t *testing.T, alg Algorithm) (*PrivateKey, *PublicKey) {
	t.Helper()
	dir := t.TempDir()
	priv, pub, err := GenerateKey(alg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "k"), priv, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "k.pub"), pub, 0o644); err != nil {
		t.Fatal(err)
	}
	k, err := LoadPrivateKey(filepath.Join(dir, "k"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := LoadPublicKey(filepath.Join(dir, "k.pub"))
	if err != nil {
		t.Fatal(err)
	}
	if p.ID() != k.Public().ID() {
		t.Fatalf("public key %s, private key's %s", p.ID(), k.Public().ID())
	}
	return k, p
}

func buildInfo() BuildInfo {
	h := func(c byte) v1.Hash { return v1.Hash{Algorithm: "sha256", Hex: strings.Repeat(string(c), 64)} }
	return BuildInfo{
		Specs:          []Material{{Name: "host.yml", Digest: h('a')}},
		Lock:           &Material{Name: "host.lock", Digest: h('b')},
		Images:         []Material{{Name: "linuxkit/init:v1", URI: "docker.io/linuxkit/init:v1", Digest: h('c')}, {Name: "oci:kernel", URI: "oci:/k", Digest: h('d')}},
		Parameters:     map[string]string{"platform": "linux/amd64"},
		BuilderVersion: "v0.1.0",
	}
}

func writeArtifacts(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for n, c := range artifacts {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func signedDir(t *testing.T, alg Algorithm) (string, *PrivateKey, *PublicKey) {
	t.Helper()
	k, p := newKey(t, alg)
	dir := writeArtifacts(t)
	if err := SignArtifacts(context.Background(), dir, artifactNamesSorted(), k, buildInfo()); err != nil {
		t.Fatal(err)
	}
	return dir, k, p
}

func failing(results []Result) []string {
	var out []string
	for _, r := range results {
		if !r.OK() {
			out = append(out, r.Name)
		}
	}
	return out
}

func TestSignVerify(t *testing.T) {
	for _, alg := range []Algorithm{ECDSAP256, Ed25519} {
		t.Run(string(alg), func(t *testing.T) {
			dir, _, pub := signedDir(t, alg)
			results, err := Verify(context.Background(), dir, pub)
			if err != nil {
				t.Fatalf("%v: %v", err, results)
			}
			if len(results) != len(artifacts)+2 {
				t.Errorf("%d results, want %d", len(results), len(artifacts)+2)
			}
			_, other := newKey(t, alg)
			results, err = Verify(context.Background(), dir, other)
			if err == nil || len(failing(results)) != len(results) {
				t.Errorf("another key: %v, failing %v", err, failing(results))
			}
		})
	}
}

// TestTamper flips one byte of each file in turn: exactly the file it
// belongs to fails.
func TestTamper(t *testing.T) {
	dir, _, pub := signedDir(t, ECDSAP256)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		path := filepath.Join(dir, e.Name())
		orig, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		owner := strings.TrimSuffix(e.Name(), BundleSuffix)
		for _, at := range []int{0, len(orig) / 2, len(orig) - 2} {
			b := bytes.Clone(orig)
			b[at] ^= 0x01
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			results, err := Verify(context.Background(), dir, pub)
			if got := failing(results); err == nil || len(got) != 1 || got[0] != owner {
				t.Errorf("flipping byte %d of %s: failing %v (%v), want [%s]", at, e.Name(), got, err, owner)
			}
		}
		if err := os.WriteFile(path, orig, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Verify(context.Background(), dir, pub); err != nil {
		t.Fatalf("restored: %v", err)
	}
}

func TestMissingFiles(t *testing.T) {
	for _, name := range []string{"host-kernel", "host-kernel" + BundleSuffix, SumsFile, ProvenanceFile} {
		dir, _, pub := signedDir(t, ECDSAP256)
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
		results, err := Verify(context.Background(), dir, pub)
		owner := strings.TrimSuffix(name, BundleSuffix)
		if got := failing(results); err == nil || len(got) != 1 || got[0] != owner {
			t.Errorf("without %s: failing %v, want [%s]", name, got, owner)
		}
	}
}

// TestSigstoreGoOracle verifies the bundles and the provenance with
// sigstore-go's own verifier in key mode, keyed by the bundles' key hint.
func TestSigstoreGoOracle(t *testing.T) {
	for _, alg := range []Algorithm{ECDSAP256, Ed25519} {
		t.Run(string(alg), func(t *testing.T) {
			dir, _, pub := signedDir(t, alg)
			v, err := pub.Verifier()
			if err != nil {
				t.Fatal(err)
			}
			tm := root.NewTrustedPublicKeyMaterialFromMapping(map[string]*root.ExpiringKey{
				pub.ID(): root.NewExpiringKey(v, time.Time{}, time.Time{}),
			})
			sev, err := verify.NewVerifier(tm, verify.WithNoObserverTimestamps())
			if err != nil {
				t.Fatal(err)
			}
			for _, name := range append(artifactNamesSorted(), SumsFile) {
				b, err := bundle.LoadJSONFromPath(filepath.Join(dir, name+BundleSuffix))
				if err != nil {
					t.Fatal(err)
				}
				f, err := os.Open(filepath.Join(dir, name))
				if err != nil {
					t.Fatal(err)
				}
				_, err = sev.Verify(b, verify.NewPolicy(verify.WithArtifact(f), verify.WithKey()))
				f.Close()
				if err != nil {
					t.Errorf("%s: %v", name, err)
				}
				if b.GetMediaType() != BundleMediaType {
					t.Errorf("%s: media type %s", name, b.GetMediaType())
				}
			}
			line, err := os.ReadFile(filepath.Join(dir, ProvenanceFile))
			if err != nil {
				t.Fatal(err)
			}
			env, err := ParseEnvelope(line)
			if err != nil {
				t.Fatal(err)
			}
			b, err := env.Bundle()
			if err != nil {
				t.Fatal(err)
			}
			h, _, err := fileDigest(filepath.Join(dir, "host-kernel"))
			if err != nil {
				t.Fatal(err)
			}
			digest, _ := hex.DecodeString(h.Hex)
			if _, err := sev.Verify(b, verify.NewPolicy(verify.WithArtifactDigest("sha256", digest), verify.WithKey())); err != nil {
				t.Errorf("provenance: %v", err)
			}
		})
	}
}

// TestProvenanceContent checks the statement's subjects against SHA256SUMS
// and its materials against the build's inputs.
func TestProvenanceContent(t *testing.T) {
	dir, _, pub := signedDir(t, ECDSAP256)
	line, err := os.ReadFile(filepath.Join(dir, ProvenanceFile))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Count(line, []byte("\n")) != 1 {
		t.Errorf("%s is not one line", ProvenanceFile)
	}
	env, err := ParseEnvelope(line)
	if err != nil {
		t.Fatal(err)
	}
	if env.PayloadType != InTotoPayloadType || env.Signatures[0].KeyID != pub.ID() {
		t.Errorf("envelope %s by %s", env.PayloadType, env.Signatures[0].KeyID)
	}
	payload, err := env.Verify(pub)
	if err != nil {
		t.Fatal(err)
	}
	st, subjects, err := ParseStatement(payload)
	if err != nil {
		t.Fatal(err)
	}
	sumsData, err := os.ReadFile(filepath.Join(dir, SumsFile))
	if err != nil {
		t.Fatal(err)
	}
	listed, err := parseSums(sumsData)
	if err != nil {
		t.Fatal(err)
	}
	if !sameDigests(listed, subjects) || len(subjects) != len(artifacts) {
		t.Errorf("subjects %v, SHA256SUMS %v", subjects, listed)
	}
	if st.PredicateType != SLSAProvenanceType {
		t.Errorf("predicate type %s", st.PredicateType)
	}
	var pred Provenance
	if err := json.Unmarshal(st.Predicate, &pred); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range pred.BuildDefinition.ResolvedDependencies {
		got = append(got, d.Name+"="+d.Digest["sha256"])
	}
	var want []string
	info := buildInfo()
	for _, m := range append(append(info.Specs, *info.Lock), info.Images...) {
		want = append(want, m.Name+"="+m.Digest.Hex)
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("materials\n  %v\nwant\n  %v", got, want)
	}
	if pred.RunDetails.Builder.Version["bulkhead"] != "v0.1.0" || pred.BuildDefinition.BuildType != BuildType {
		t.Errorf("builder %+v, build type %s", pred.RunDetails.Builder, pred.BuildDefinition.BuildType)
	}
}

// TestReproducible: the same artifacts signed twice with the same key give
// the same bytes.
func TestReproducible(t *testing.T) {
	for _, alg := range []Algorithm{ECDSAP256, Ed25519} {
		k, _ := newKey(t, alg)
		a, b := writeArtifacts(t), writeArtifacts(t)
		for _, dir := range []string{a, b} {
			if err := SignArtifacts(context.Background(), dir, artifactNamesSorted(), k, buildInfo()); err != nil {
				t.Fatal(err)
			}
		}
		entries, _ := os.ReadDir(a)
		for _, e := range entries {
			x, _ := os.ReadFile(filepath.Join(a, e.Name()))
			y, _ := os.ReadFile(filepath.Join(b, e.Name()))
			if !bytes.Equal(x, y) {
				t.Errorf("%s: %s differs between two signings", alg, e.Name())
			}
		}
	}
}

func TestSignArtifactsRefuses(t *testing.T) {
	k, _ := newKey(t, ECDSAP256)
	for _, files := range [][]string{{"missing"}, {"host-kernel", "../x"}, {"host-kernel", SumsFile}, {"x" + BundleSuffix}, nil} {
		dir := writeArtifacts(t)
		if err := SignArtifacts(context.Background(), dir, files, k, buildInfo()); err == nil {
			t.Errorf("%q: signed", files)
		}
		entries, _ := os.ReadDir(dir)
		if len(entries) != len(artifacts) {
			t.Errorf("%q: %d files after a failed signing, want %d", files, len(entries), len(artifacts))
		}
	}
}

func TestLoadPrivateKey(t *testing.T) {
	priv, _, err := GenerateKey(Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("BULKHEAD_TEST_KEY", string(priv))
	k, err := LoadPrivateKey(EnvPrefix + "BULKHEAD_TEST_KEY")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(k.String(), "private key sha256:") {
		t.Errorf("String() = %q", k.String())
	}
	if _, err := LoadPrivateKey(EnvPrefix + "BULKHEAD_TEST_UNSET"); err == nil {
		t.Error("an unset variable loaded")
	}
	// A damaged key: the error must not quote it.
	lines := strings.Split(string(priv), "\n")
	secret := lines[1]
	lines[1] = "AAAA" + secret[4:]
	t.Setenv("BULKHEAD_TEST_KEY", strings.Join(lines, "\n"))
	_, err = LoadPrivateKey(EnvPrefix + "BULKHEAD_TEST_KEY")
	if err == nil {
		t.Fatal("a damaged key loaded")
	}
	for _, part := range []string{secret[4:20], secret[20:]} {
		if strings.Contains(err.Error(), part) {
			t.Errorf("the error quotes the key: %v", err)
		}
	}
	if _, _, err := GenerateKey("rsa"); err == nil {
		t.Error("an unknown algorithm generated a key")
	}
}

// TestSignWithDigests: an ECDSA key signs the digest its writer gave (the
// artifact is not read again) and the signed set is byte for byte the one
// signed from the files; a wrong digest given is what gets signed, so the
// set fails to verify. An Ed25519 key cannot sign a digest.
func TestSignWithDigests(t *testing.T) {
	k, pub := newKey(t, ECDSAP256)
	plain, given := writeArtifacts(t), writeArtifacts(t)
	if err := SignArtifacts(context.Background(), plain, artifactNamesSorted(), k, buildInfo()); err != nil {
		t.Fatal(err)
	}
	digests := map[string]string{}
	for n, c := range artifacts {
		sum := sha256.Sum256([]byte(c))
		digests[n] = "sha256:" + hex.EncodeToString(sum[:])
	}
	if err := SignArtifacts(context.Background(), given, artifactNamesSorted(), k, buildInfo(), WithDigests(digests)); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(plain)
	for _, e := range entries {
		x, _ := os.ReadFile(filepath.Join(plain, e.Name()))
		y, _ := os.ReadFile(filepath.Join(given, e.Name()))
		if !bytes.Equal(x, y) {
			t.Errorf("%s differs between signing from the files and from the given digests", e.Name())
		}
	}

	name := artifactNamesSorted()[0]
	wrong := writeArtifacts(t)
	bad := sha256.Sum256([]byte("other bytes"))
	if err := SignArtifacts(context.Background(), wrong, artifactNamesSorted(), k, buildInfo(), WithDigests(map[string]string{name: hex.EncodeToString(bad[:])})); err != nil {
		t.Fatal(err)
	}
	results, err := Verify(context.Background(), wrong, pub)
	if err == nil || !slices.Contains(failing(results), name) {
		t.Errorf("a wrong digest given verifies: %v, failing %v", err, failing(results))
	}

	ed, _ := newKey(t, Ed25519)
	if _, err := SignDigest(context.Background(), ed, bad[:]); err == nil {
		t.Error("an Ed25519 key signed a digest")
	}
}
