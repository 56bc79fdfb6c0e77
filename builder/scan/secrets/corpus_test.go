package secrets

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"flag"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// plant is one corpus file: a real-looking credential (secret) or
// something that only looks like one (a look-alike).
type plant struct {
	path   string
	kind   string
	secret bool
	data   string
}

const (
	upperDigits = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	alnum       = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	lowerAlnum  = "abcdefghijklmnopqrstuvwxyz0123456789"
	hexLower    = "0123456789abcdef"
	b64chars    = alnum + "+/"
)

// corpus makes the planted secrets and look-alikes. Values are generated
// at run time from a fixed seed, so no credential-shaped literal is in
// the source and every run plants the same bytes (keys aside).
func corpus(t *testing.T) []plant {
	r := mrand.New(mrand.NewChaCha8([32]byte{'b', 'u', 'l', 'k', 'h', 'e', 'a', 'd'}))
	s := func(alphabet string, n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		return string(b)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaPEM := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)}))
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, err := x509.MarshalECPrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	ecPEM := string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecDER}))
	sshBody := append([]byte("openssh-key-v1\x00\x00\x00\x00\x04none"), []byte(s(alnum, 300))...)
	sshPEM := string(pem.EncodeToMemory(&pem.Block{Type: "OPENSSH PRIVATE KEY", Bytes: sshBody}))
	pkcs8, err := x509.MarshalPKCS8PrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8PEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}))
	_, pub, cert := testKeyPEM(t)
	gh := func(prefix string) string { body := s(alnum, 30); return prefix + body + GitHubChecksum(body) }
	jwt := func() string {
		h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
		p := base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"svc-` + s(lowerAlnum, 8) + `","iat":1733000000}`))
		return h + "." + p + "." + s(alnum+"-_", 43)
	}
	gsa, _ := json.MarshalIndent(map[string]string{
		"type": "service_account", "project_id": "shop-" + s(lowerAlnum, 6), "private_key_id": s(hexLower, 40),
		"private_key": pkcs8PEM, "client_email": "deploy@shop.iam.gserviceaccount.com", "client_id": s("0123456789", 21),
	}, "", "  ")
	dockerAuth, _ := json.MarshalIndent(map[string]any{"auths": map[string]any{
		"registry.example.net": map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte("ci-bot:" + s(alnum, 24)))}}}, "", "\t")
	return []plant{
		// cloud
		{"cloud/aws/credentials", "aws key pair", true, "[default]\naws_access_key_id = AKIA" + s(upperDigits, 16) + "\naws_secret_access_key = " + s(b64chars, 40) + "\n"},
		{"cloud/aws/deploy.env", "aws secret key alone", true, "AWS_REGION=eu-west-1\nAWS_SECRET_ACCESS_KEY=" + s(b64chars, 40) + "\n"},
		{"cloud/gcp/sa.json", "gcp service account key", true, string(gsa)},
		{"cloud/gcp/maps.js", "google api key", true, "const key = \"AIza" + s(alnum+"-_", 35) + "\";\n"},
		{"cloud/azure/storage.conf", "azure storage connection string", true, "conn=DefaultEndpointsProtocol=https;AccountName=shopdata;AccountKey=" + s(b64chars, 86) + "==;EndpointSuffix=core.windows.net\n"},
		{"cloud/azure/app.env", "azure ad client secret", true, "AZURE_CLIENT_SECRET=" + s(alnum, 3) + "8Q~" + s(alnum+"_-.", 34) + "\n"},
		{"cloud/do/token", "digitalocean token", true, "DIGITALOCEAN_TOKEN=dop_v1_" + s(hexLower, 64) + "\n"},
		{"cloud/tfc/credentials.tfrc.json", "terraform cloud token", true, `{"credentials":{"app.terraform.io":{"token":"` + s(alnum, 14) + ".atlasv1." + s(alnum, 67) + `"}}}` + "\n"},
		// CI and source hosting
		{"ci/github/.netrc", "github classic pat", true, "machine github.com login ci password " + gh("ghp_") + "\n"},
		{"ci/github/workflow.yml", "github fine-grained pat", true, "env:\n  GH_TOKEN: github_pat_" + s(alnum, 22) + "_" + s(alnum, 59) + "\n"},
		{"ci/gitlab/runner.toml", "gitlab runner token", true, "[[runners]]\n  token = \"glrt-" + s(alnum+"_-", 20) + "\"\n"},
		{"ci/gitlab/.env", "gitlab pat", true, "GITLAB_TOKEN=glpat-" + s(alnum+"_-", 20) + "\n"},
		{"ci/npm/.npmrc", "npm token", true, "//registry.npmjs.org/:_authToken=npm_" + s(alnum, 36) + "\n"},
		{"ci/pypi/.pypirc", "pypi token", true, "[pypi]\nusername = __token__\npassword = pypi-AgEIcHlwaS5vcmc" + s(alnum+"-_", 70) + "\n"},
		{"ci/vault/env", "vault token", true, "VAULT_TOKEN=hvs." + s(alnum+"_-", 90) + "\n"},
		// container registries
		{"registry/docker/config.json", "docker config auth", true, string(dockerAuth)},
		{"registry/dockerhub/token", "docker hub pat", true, "DOCKERHUB_TOKEN=dckr_pat_" + s(alnum+"_-", 27) + "\n"},
		// clusters
		{"cluster/kubeconfig", "kubeconfig client key (base64 pem)", true, "apiVersion: v1\nkind: Config\nusers:\n- name: admin\n  user:\n    client-key-data: " + base64.StdEncoding.EncodeToString([]byte(rsaPEM)) + "\n"},
		{"cluster/secret.yaml", "kubernetes secret manifest", true, "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\ntype: Opaque\ndata:\n  password: " + base64.StdEncoding.EncodeToString([]byte(s(alnum, 20))) + "\n"},
		{"cluster/sa-token", "service account jwt", true, "token: " + jwt() + "\n"},
		// SaaS
		{"saas/slack/bot.env", "slack bot token", true, "SLACK_BOT_TOKEN=xoxb-" + s("0123456789", 11) + "-" + s("0123456789", 13) + "-" + s(alnum, 24) + "\n"},
		{"saas/slack/hook.txt", "slack webhook", true, "https://hooks.slack.com/services/T" + s(upperDigits, 10) + "/B" + s(upperDigits, 10) + "/" + s(alnum, 24) + "\n"},
		{"saas/stripe/app.py", "stripe live key", true, "stripe.api_key = \"sk_live_" + s(alnum, 99) + "\"\n"},
		{"saas/sendgrid/mail.env", "sendgrid key", true, "SENDGRID_API_KEY=SG." + s(alnum+"-_", 22) + "." + s(alnum+"-_", 43) + "\n"},
		{"saas/twilio/conf.ini", "twilio api key", true, "[twilio]\napi_key = SK" + s(hexLower, 32) + "\n"},
		{"saas/shopify/app.env", "shopify access token", true, "SHOPIFY_TOKEN=shpat_" + s(hexLower, 32) + "\n"},
		{"saas/openai/.env", "openai project key", true, "OPENAI_API_KEY=sk-proj-" + s(alnum+"-_", 74) + "T3BlbkFJ" + s(alnum+"-_", 74) + "\n"},
		{"saas/anthropic/.env", "anthropic key", true, "ANTHROPIC_API_KEY=sk-ant-api03-" + s(alnum+"-_", 93) + "AA\n"},
		{"saas/grafana/sa.env", "grafana service account token", true, "GRAFANA_TOKEN=glsa_" + s(alnum, 32) + "_" + s(hexLower, 8) + "\n"},
		{"saas/postman/env", "postman key", true, "POSTMAN_API_KEY=PMAK-" + s(hexLower, 24) + "-" + s(hexLower, 34) + "\n"},
		{"saas/age/key.txt", "age identity", true, "# created: 2026-01-01\nAGE-SECRET-KEY-1" + s("QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L", 58) + "\n"},
		// private keys
		{"keys/id_rsa", "rsa private key", true, rsaPEM},
		{"keys/id_ed25519", "openssh private key", true, sshPEM},
		{"keys/ec.pem", "ec private key", true, ecPEM},
		{"keys/tls.env", "base64-wrapped pem in env", true, "TLS_KEY_B64=" + base64.StdEncoding.EncodeToString([]byte(ecPEM)) + "\n"},
		// credentials in configs
		{"config/app.json", "password in json config", true, `{"database": {"host": "db", "user": "shop", "password": "hX9#kq2!Lm4` + s(alnum, 6) + `"}}` + "\n"},
		{"config/app.yaml", "password in yaml config", true, "db:\n  host: db\n  credentials:\n    password: \"Tr0ub4dor&3" + s(alnum, 6) + "\"\n"},
		{"config/nested.json", "api key nested in json list", true, `{"integrations": [{"name": "crm", "settings": {"apiKey": "` + s(alnum, 8) + "-" + s(alnum, 8) + `"}}]}` + "\n"},
		{"config/db.url", "url credentials", true, "DATABASE_URL=postgres://shop:" + s(alnum, 14) + "@db.internal:5432/shop\n"},

		// look-alikes
		{"alike/aws-example", "aws documented example keys", false, "aws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n"},
		{"alike/id_ecdsa.pub", "public key pem", false, string(pub)},
		{"alike/ssh.pub", "openssh public key", false, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI" + s(b64chars, 43) + " ops@bastion\n"},
		{"alike/ca.crt", "certificate", false, string(cert)},
		{"alike/template.yaml", "templated password", false, "db:\n  password: ${DB_PASSWORD}\n  token: \"{{ .Values.token }}\"\n"},
		{"alike/default.conf", "placeholder password", false, "# change before use\npassword = changeme\n"},
		{"alike/readme.md", "documentation placeholder", false, "Set `API_KEY=<your-api-key>` and `password: <password>` in the config.\n"},
		{"alike/images.lock", "image digests", false, "bulkhead/hello:dev@sha256:" + s(hexLower, 64) + "\nbulkhead/init:dev@sha256:" + s(hexLower, 64) + "\n"},
		{"alike/CHANGELOG", "commit hashes", false, "- " + s(hexLower, 40) + " fix the token refresh\n- " + s(hexLower, 40) + " rotate secrets on a timer\n"},
		{"alike/instance.yaml", "uuids", false, "instance_id: " + s(hexLower, 8) + "-" + s(hexLower, 4) + "-4" + s(hexLower, 3) + "-a" + s(hexLower, 3) + "-" + s(hexLower, 12) + "\n"},
		{"alike/go.sum", "go.sum hashes", false, "golang.org/x/sys v0.48.0 h1:" + s(b64chars, 43) + "=\ngolang.org/x/sys v0.48.0/go.mod h1:" + s(b64chars, 43) + "=\n"},
		{"alike/ghp-bad-checksum", "github token with a bad checksum", false, "token: ghp_" + s(alnum, 36) + "\n"},
		{"alike/shadow", "locked accounts", false, "root:*:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n"},
		{"alike/deploy.yaml", "secret reference", false, "env:\n- name: DB_PASSWORD\n  valueFrom:\n    secretKeyRef:\n      name: db\n      key: password\n"},
		{"alike/docker-config.json", "docker credential store", false, `{"credsStore": "desktop", "auths": {"ghcr.io": {}}}` + "\n"},
		{"alike/app-files.yaml", "secret file path", false, "api_key_file: /run/secrets/api_key\npassword_file: /run/secrets/db\n"},
		{"alike/index.html", "subresource integrity", false, `<script src="app.js" integrity="sha384-` + s(b64chars, 64) + `"></script>` + "\n"},
		{"alike/dhparam.pem", "dh parameters", false, string(pem.EncodeToMemory(&pem.Block{Type: "DH PARAMETERS", Bytes: []byte(s(alnum, 256))}))},
		{"alike/prose.txt", "prose about secrets", false, "The secret to good bread is time. Never share your password; a token of thanks.\n"},
		{"alike/man.txt", "usage text", false, "  --password PASSWORD   the password to use\n  --token TOKEN         an access token\n"},
		{"alike/hex-colors.css", "hex colours", false, ".a{color:#" + s(hexLower, 6) + "} .b{color:#" + s(hexLower, 6) + "}\n"},
		{"alike/test-key.txt", "placeholder key", false, "SECRET_KEY=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n"},
		{"alike/schema.json", "credential schema", false, `{"properties": {"password": {"type": "string", "minLength": 12}, "token": {"type": "string"}}}` + "\n"},
		{"alike/data.b64", "base64 of prose", false, base64.StdEncoding.EncodeToString([]byte("bulkhead builds minimal immutable hosts from a YAML spec, and keeps them patched.")) + "\n"},
	}
}

var corpusOut = flag.String("corpus", "", "also write the secrets corpus to this directory (for another scanner)")

// TestCorpus measures the gate on the corpus: every planted secret found,
// no look-alike reported. With gitleaks on PATH it measures gitleaks on
// the same tree and logs both (go test -run TestCorpus -v).
func TestCorpus(t *testing.T) {
	plants := corpus(t)
	dir := *corpusOut
	if dir == "" {
		dir = t.TempDir()
	}
	for _, p := range plants {
		f := filepath.Join(dir, p.path)
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte(p.data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ours := map[string][]string{}
	for _, p := range plants {
		for _, f := range Scan(p.path, []byte(p.data), IsText([]byte(p.data))) {
			ours[p.path] = append(ours[p.path], f.Rule)
		}
	}
	found, missed, fps := tally(plants, ours)
	t.Logf("bulkhead gate (own rules + gitleaks %s rules as a library + structured checks): %d secrets, %d look-alikes: found %d, missed %d %v, false positives %d %v",
		GitleaksVersion, countSecrets(plants), len(plants)-countSecrets(plants), len(found), len(missed), missed, len(fps), fps)
	if len(missed) > 0 || len(fps) > 0 || testing.Verbose() {
		for _, p := range plants {
			t.Logf("  %-40s %-5v %v", p.path, p.secret, ours[p.path])
		}
	}
	if len(missed) > 0 || len(fps) > 0 {
		t.Errorf("missed %v, false positives %v", missed, fps)
	}
	layers(t, plants)
	if bin, err := exec.LookPath("gitleaks"); err == nil {
		theirs := runGitleaks(t, bin, dir)
		found, missed, fps := tally(plants, theirs)
		if testing.Verbose() {
			for _, p := range plants {
				t.Logf("  gitleaks %-40s %-5v %v", p.path, p.secret, theirs[p.path])
			}
		}
		t.Logf("gitleaks CLI (%s dir, default rules): found %d, missed %d %v, false positives %d %v", bin, len(found), len(missed), missed, len(fps), fps)
	}
}

func countSecrets(plants []plant) int {
	n := 0
	for _, p := range plants {
		if p.secret {
			n++
		}
	}
	return n
}

// tally sorts the corpus by what a scanner reported per file.
func tally(plants []plant, got map[string][]string) (found, missed, fps []string) {
	for _, p := range plants {
		hit := len(got[p.path]) > 0
		switch {
		case p.secret && hit:
			found = append(found, p.kind)
		case p.secret:
			missed = append(missed, p.kind)
		case hit:
			fps = append(fps, p.kind+" "+strings.Join(got[p.path], ","))
		}
	}
	return found, missed, fps
}

// runGitleaks scans dir with the gitleaks CLI and returns its rules per
// corpus path.
func runGitleaks(t *testing.T, bin, dir string) map[string][]string {
	report := filepath.Join(t.TempDir(), "report.json")
	cmd := exec.Command(bin, "dir", dir, "--no-banner", "--exit-code", "0", "--report-format", "json", "--report-path", report, "--log-level", "error")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gitleaks: %v\n%s", err, out)
	}
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var fs []struct {
		RuleID string
		File   string
	}
	if err := json.Unmarshal(b, &fs); err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, f := range fs {
		rel, err := filepath.Rel(dir, f.File)
		if err != nil || strings.HasPrefix(rel, "..") {
			rel = strings.TrimPrefix(f.File, dir+"/")
		}
		got[filepath.ToSlash(rel)] = append(got[filepath.ToSlash(rel)], f.RuleID)
	}
	for k := range got {
		sort.Strings(got[k])
	}
	return got
}

// layers logs what each layer of the gate finds on its own: bulkhead's
// rules before gitleaks came (anchored, URLs, assignments), gitleaks'
// rules, and the structured checks (configs, base64-wrapped keys).
func layers(t *testing.T, plants []plant) {
	for _, l := range []struct {
		name string
		find func(p plant) []ruleMatch
	}{
		{"bulkhead's own rules alone", func(p plant) []ruleMatch {
			var ms []ruleMatch
			for _, r := range anchored {
				ms = append(ms, r.find([]byte(p.data))...)
			}
			for _, m := range append(findURLCredentials([]byte(p.data)), findAssignments([]byte(p.data))...) {
				if !hasTokenPrefix(m.secret) {
					ms = append(ms, m)
				}
			}
			return ms
		}},
		{"gitleaks rules (library) alone", func(p plant) []ruleMatch { return findGitleaks(p.path, []byte(p.data)) }},
		{"structured checks alone", func(p plant) []ruleMatch {
			return append(findStructured(p.path, []byte(p.data)), findBase64PEM([]byte(p.data))...)
		}},
	} {
		got := map[string][]string{}
		for _, p := range plants {
			for _, m := range l.find(p) {
				got[p.path] = append(got[p.path], m.rule)
			}
		}
		found, missed, fps := tally(plants, got)
		t.Logf("%s: found %d, missed %d, false positives %d %v", l.name, len(found), len(missed), len(fps), fps)
	}
}
