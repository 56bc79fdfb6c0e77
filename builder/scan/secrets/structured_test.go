package secrets

import (
	"encoding/base64"
	"slices"
	"testing"
)

// TestGitleaksRules: gitleaks' whole default rule set loads, and its
// rules report under their own names.
func TestGitleaksRules(t *testing.T) {
	if n := gitleaksRules(); n < 150 {
		t.Fatalf("gitleaks default rules: %d, want the whole set (over 150)", n)
	}
	tok := "dckr_pat_" + "Xq3vTz8LmN2pR5sW9yB1cD4fG7h"
	got := rules(Scan("ci/env", []byte("DOCKERHUB_TOKEN="+tok+"\n"), true))
	if !slices.Contains(got, "gitleaks:docker-hub-pat") && !slices.Contains(got, "generic-secret") {
		t.Fatalf("docker hub pat: %v", got)
	}
}

func TestStructured(t *testing.T) {
	priv, _, _ := testKeyPEM(t)
	b64 := base64.StdEncoding.EncodeToString(priv)
	auth := base64.StdEncoding.EncodeToString([]byte("bot:Zq8wLp3xK7vN2m"))
	for _, c := range []struct {
		name, where, data string
		want              string
	}{
		{"json password", "app.json", `{"db": {"password": "hX9#kq2!Lm4pQz"}}`, "config-credential"},
		{"yaml nested", "app.yaml", "a:\n  b:\n    client_secret: \"Tr0ub4dor&3xY\"\n", "config-credential"},
		{"docker auth", "config.json", `{"auths": {"r.example.net": {"auth": "` + auth + `"}}}`, "registry-auth"},
		{"base64 pem", "kubeconfig", "client-key-data: " + b64 + "\n", "private-key-base64"},
		{"base64 pem in a binary", "blob", "\x00\x01" + b64 + "\x00", "private-key-base64"},
	} {
		got := rules(Scan(c.where, []byte(c.data), IsText([]byte(c.data))))
		if !slices.Contains(got, c.want) {
			t.Errorf("%s: %v, want %s", c.name, got, c.want)
		}
	}
	for _, c := range []struct{ name, where, data string }{
		{"template", "app.yaml", "password: ${DB_PASSWORD}\n"},
		{"schema", "schema.json", `{"password": {"type": "string"}}`},
		{"path", "app.yaml", "password_file: /run/secrets/db\n"},
		{"creds store", "config.json", `{"credsStore": "desktop"}`},
		{"word", "app.yaml", "token: bearer\n"},
		{"base64 public key", "x", base64.StdEncoding.EncodeToString([]byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"))},
	} {
		if got := Scan(c.where, []byte(c.data), true); len(got) > 0 {
			t.Errorf("%s: %v, want nothing", c.name, rules(got))
		}
	}
}

// TestGitleaksHold: a held rule set stays loaded across scans; the last
// release drops it, and the next scan loads it again and finds the same.
func TestGitleaksHold(t *testing.T) {
	text := []byte("slack_webhook = \"https://hooks.slack.com/services/T0AAAAAAA/B0BBBBBBB/abcdefghijklmnopqrstuvwx\"\n")
	want := findGitleaks("app.conf", text)
	if len(want) == 0 {
		t.Fatal("gitleaks finds nothing in the test text")
	}
	outer := Hold()
	inner := Hold()
	d, _ := detector()
	inner()
	inner() // a second call of a release does nothing
	if again, _ := detector(); again != d {
		t.Fatal("the rule set was dropped while still held")
	}
	outer()
	leaks.mu.Lock()
	dropped := leaks.d == nil
	leaks.mu.Unlock()
	if !dropped {
		t.Fatal("the last release kept the rule set")
	}
	if got := findGitleaks("app.conf", text); len(got) != len(want) || got[0].secret != want[0].secret {
		t.Fatalf("after a reload gitleaks found %v, want %v", got, want)
	}
}
