package tpmseal

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"github.com/bulkhead-dev/bulkhead/internal/test/swtpmtest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/bulkhead-dev/bulkhead/builder/uki"
)

// TestPolicyDigestAgreesWithSystemd: systemd-cryptenroll (systemd 252)
// enrolls a LUKS2 image under the same .pcrpkey, signed PCR 11 policy
// only, with a real swtpm: the policy it seals to is PolicyDigest's (so
// the key's TPM name is the same too).
func TestPolicyDigestAgreesWithSystemd(t *testing.T) {
	for _, tool := range []string{"systemd-cryptenroll", "cryptsetup", "swtpm"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is required (scripts/install-deps): %v", tool, err)
		}
	}
	key, _ := keys()
	dir := t.TempDir()
	pubPEM := uki.PCRPKey(&key.PublicKey)
	img, pub, pass := filepath.Join(dir, "img"), filepath.Join(dir, "pub.pem"), filepath.Join(dir, "pass")
	os.WriteFile(pub, pubPEM, 0o600)
	os.WriteFile(pass, []byte("pw"), 0o600)
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	os.Truncate(img, 20<<20)
	run(t, nil, "cryptsetup", "luksFormat", "--type", "luks2", "--batch-mode", "--pbkdf", "pbkdf2",
		"--pbkdf-force-iterations", "1000", img, pass)

	port := swtpmtest.StartTCP(t, dir, "startup-clear")
	run(t, []string{"PASSWORD=pw"}, "systemd-cryptenroll", fmt.Sprintf("--tpm2-device=swtpm:host=127.0.0.1,port=%d", port),
		"--tpm2-public-key="+pub, "--tpm2-public-key-pcrs=11", "--tpm2-pcrs=", img)

	var meta struct {
		Tokens map[string]struct {
			Type   string `json:"type"`
			Policy string `json:"tpm2-policy-hash"`
		} `json:"tokens"`
	}
	if err := json.Unmarshal(run(t, nil, "cryptsetup", "luksDump", "--dump-json-metadata", img), &meta); err != nil {
		t.Fatal(err)
	}
	want, err := PolicyDigest(pubPEM)
	if err != nil {
		t.Fatal(err)
	}
	tok, ok := meta.Tokens["0"]
	if !ok || tok.Type != "systemd-tpm2" {
		t.Fatalf("no systemd-tpm2 token: %+v", meta.Tokens)
	}
	if tok.Policy != hex.EncodeToString(want) {
		t.Fatalf("systemd-cryptenroll sealed to policy %s, PolicyDigest is %x", tok.Policy, want)
	}
}

func run(t *testing.T, env []string, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), name, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		t.Fatalf("%s %v: %v\n%s", name, args, err, msg)
	}
	return out
}
