package secrets

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"
)

func testKeyPEM(t *testing.T) (priv, pub, cert []byte) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "t"}, NotAfter: time.Unix(2e9, 0)}
	certDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certDER})
}

// GitHubTestToken makes a classic token with a valid checksum.
func githubTestToken() string {
	body := "R4nd0mB0dyF0rAT3stT0k3nAbCdEf"
	body += "Z"
	return "ghp_" + body + GitHubChecksum(body)
}

func rules(fs []Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Rule)
	}
	return out
}

func TestScanFindsSecrets(t *testing.T) {
	priv, _, _ := testKeyPEM(t)
	gh := githubTestToken()
	for _, c := range []struct {
		name, data string
		want       []string
	}{
		{"pem", "key:\n" + string(priv), []string{"private-key"}},
		{"aws pair", "[default]\naws_access_key_id = AKIAZ3MSJV6QKQRSTUVW\naws_secret_access_key = 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\n", []string{"aws-access-key-id", "aws-secret-access-key"}},
		{"github", "GITHUB_TOKEN=" + gh + "\n", []string{"github-token"}},
		{"github fine-grained", "t: github_pat_" + strings.Repeat("aB3", 27) + "x\n", []string{"github-token"}},
		{"gitlab", "glpat-Ab3dEf6hIj9kLm2nOp5q\n", []string{"gitlab-token"}},
		{"slack", "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", []string{"slack-token"}},
		{"google", "key=AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q", []string{"google-api-key"}},
		{"jwt", "Authorization: Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U", []string{"jwt"}},
		{"url", "DATABASE_URL=postgres://app:S3cr3tPassw0rd@db.internal:5432/app", []string{"url-credentials"}},
		{"generic", `client_secret: "9fK2xLq8Zr4Tm7Yb1Wc6Nd3Hs5Jv0Pa"`, []string{"generic-secret"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := rules(Scan("f", []byte(c.data), true))
			if strings.Join(got, ",") != strings.Join(c.want, ",") {
				t.Errorf("rules = %v, want %v", got, c.want)
			}
		})
	}
}

func TestScanIgnoresPublicAndExamples(t *testing.T) {
	_, pub, cert := testKeyPEM(t)
	for _, data := range []string{
		string(pub), string(cert),
		"aws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n",
		"token: gho_16C7e42F292c6912E7710c838347Ae178B4a", // GitHub's docs example: bad checksum
		"url: https://user:password@example.com/",
		"password_reset_token_lifetime = 3600",
		"-----BEGIN RSA PRIVATE KEY-----\n...\n-----END RSA PRIVATE KEY-----\n",
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin",
	} {
		if got := Scan("f", []byte(data), true); len(got) != 0 {
			t.Errorf("Scan(%q) = %+v, want nothing", data, got)
		}
	}
}

func TestBinaryGetsAnchoredRulesOnly(t *testing.T) {
	priv, _, _ := testKeyPEM(t)
	data := append([]byte("\x7fELF\x00\x00 password=9fK2xLq8Zr4Tm7Yb1Wc6Nd3Hs5Jv0Pa\x00"), priv...)
	got := rules(Scan("bin", data, IsText(data)))
	if strings.Join(got, ",") != "private-key" {
		t.Errorf("rules = %v, want [private-key]", got)
	}
}

func TestFindingDetails(t *testing.T) {
	gh := githubTestToken()
	fs := Scan("etc/app.env", []byte("A=1\nB=2\nTOKEN="+gh+"\n"), true)
	if len(fs) != 1 {
		t.Fatalf("findings = %+v", fs)
	}
	f := fs[0]
	if f.Line != 3 || f.Where != "etc/app.env" || f.Excerpt != "ghp_****" {
		t.Errorf("finding = %+v", f)
	}
	if strings.Contains(f.Excerpt, gh[4:]) {
		t.Error("excerpt leaks the secret")
	}
	if f.Fingerprint != Fingerprint("github-token", gh) || len(f.Fingerprint) != 16 {
		t.Errorf("fingerprint = %q", f.Fingerprint)
	}
	if g := ScanString("image x: env", "TOKEN="+gh); len(g) != 1 || g[0].Fingerprint != f.Fingerprint {
		t.Errorf("fingerprint depends on place: %+v", g)
	}
}
