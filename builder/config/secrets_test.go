package config

import (
	"strings"
	"testing"
)

const secretsSpec = `secrets:
  - name: db
    source: fw_cfg:opt/bulkhead/db
  - name: token
    source: ec2:meta-data/tags/instance/token
    refresh: 1m
services:
  - name: web
    image: bulkhead/hello:dev
    secrets:
      - db
      - name: token
        path: /etc/web/token
        uid: 101
        mode: "0440"
        signal: SIGHUP
`

func TestSecretsSection(t *testing.T) {
	s, err := Parse("s.yml", []byte(head+secretsSpec))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Secrets) != 2 || s.Secrets[1].Refresh != "1m" || s.Secrets[0].Pos.String() != "s.yml:6:5" {
		t.Fatalf("secrets %+v", s.Secrets)
	}
	uses := s.Services[0].Secrets
	if len(uses) != 2 || uses[0].Name != "db" || SecretPath(uses[0]) != "/run/secrets/db" ||
		SecretPath(uses[1]) != "/etc/web/token" || *uses[1].UID.Num != 101 || uses[1].Signal != "SIGHUP" {
		t.Fatalf("uses %+v", uses)
	}
	if m, err := SecretMode(uses[1]); err != nil || m != 0o440 {
		t.Fatalf("mode %o %v", m, err)
	}
	if uses[0].Pos.String() != "s.yml:15:9" {
		t.Fatalf("use position %s", uses[0].Pos)
	}
	out, err := s.YAML()
	if err != nil || !strings.Contains(string(out), "fw_cfg:opt/bulkhead/db") {
		t.Fatalf("render: %v\n%s", err, out)
	}
}

func TestSecretsErrors(t *testing.T) {
	svc := "services:\n  - name: web\n    image: hello\n    secrets:\n"
	for yaml, want := range map[string]string{
		"secrets:\n  - name: db\n":                                                                               `s.yml:6:5: secret: missing required field "source" (fw_cfg:opt/NAME, ec2:PATH, gcp:PATH or configdrive:PATH)`,
		"secrets:\n  - name: db\n    source: vault:x\n":                                                          `s.yml:7:13: source "vault:x": unknown provider "vault" (providers: fw_cfg, ec2, gcp, configdrive)`,
		"secrets:\n  - name: db\n    source: fw_cfg:etc/x\n":                                                     `s.yml:7:13: source "fw_cfg:etc/x": a fw_cfg name is opt/NAME (qemu reserves the others)`,
		"secrets:\n  - name: a/b\n    source: gcp:x\n":                                                           `s.yml:6:11: secret name "a/b": use letters, digits, '.', '_' and '-' (at most 128, not starting with '.')`,
		"secrets:\n  - name: db\n    source: gcp:x\n    refresh: 0s\n":                                           `s.yml:8:14: refresh: expected a positive duration (30s, 1h), got "0s"`,
		"secrets:\n  - name: db\n    source: gcp:x\n    sorce: y\n":                                              `s.yml:8:5: unknown field "sorce" (did you mean "source"?)`,
		"secrets:\n  - {name: db, source: gcp:x}\n  - {name: db, source: gcp:y}\n":                               `s.yml:7:5: duplicate secret "db" (first defined at s.yml:6:5)`,
		svc + "      - dbb\nsecrets:\n  - {name: db, source: gcp:x}\n":                                           `s.yml:9:9: service "web" reads undeclared secret "dbb" (did you mean "db"?) (declare it in the top-level secrets section)`,
		svc + "      - {name: db, path: /etc/db}\nsecrets:\n  - {name: db, source: gcp:x}\n":                     `s.yml:9:9: secret "db": path "/etc/db": its directory /etc is mounted over with the secrets; use a directory of its own (default /run/secrets)`,
		svc + "      - {name: db, mode: \"0600\"}\nsecrets:\n  - {name: db, source: gcp:x}\n":                    `s.yml:9:9: secret "db": mode "0600": a secret is read-only`,
		svc + "      - {name: db, signal: HUP}\nsecrets:\n  - {name: db, source: gcp:x}\n":                       `s.yml:9:9: secret "db": unknown signal "HUP" (SIGHUP, SIGUSR1, SIGUSR2, SIGTERM, ...)`,
		svc + "      - db\n      - db\nsecrets:\n  - {name: db, source: gcp:x}\n":                                `s.yml:10:9: secret "db" already listed at s.yml:9:9`,
		"onboot:\n  - name: job\n    image: hello\n    secrets: [db]\nsecrets:\n  - {name: db, source: gcp:x}\n": `s.yml:8:14: secrets: only services receive secrets, not onboot`,
	} {
		_, err := Parse("s.yml", []byte(head+yaml))
		if err == nil || err.Error() != want {
			t.Errorf("%q:\n got: %v\nwant: %s", yaml, err, want)
		}
	}
}

func TestMetadataSection(t *testing.T) {
	s, err := Parse("m.yml", []byte(head+"metadata:\n  provider: ec2\n  userdata: true\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c := s.Metadata.MetadataConfig(); c.Provider != "ec2" || !c.Hostname || !c.UserData {
		t.Fatalf("metadata %+v", c)
	}
	for yaml, want := range map[string]string{
		"metadata:\n  userdata: true\n":               `m.yml:6:3: metadata: missing required field "provider" (fw_cfg, ec2, gcp or configdrive)`,
		"metadata:\n  provider: azure\n":              `m.yml:6:13: metadata: unknown metadata provider "azure" (fw_cfg, ec2, gcp, configdrive)`,
		"metadata:\n  provider: gcp\n  timeout: no\n": `m.yml:7:12: timeout: expected a positive duration (10s), got "no"`,
	} {
		_, err := Parse("m.yml", []byte(head+yaml))
		if err == nil || err.Error() != want {
			t.Errorf("%q:\n got: %v\nwant: %s", yaml, err, want)
		}
	}
}

func TestSecretsBindWarning(t *testing.T) {
	spec := head + "services:\n  - name: nosy\n    image: hello\n    binds: [\"/run:/run\", \"/var/log:/log\"]\n" +
		"  - name: ok\n    image: hello\n    binds: [\"/run/containerd:/c\"]\nsecrets:\n  - {name: db, source: gcp:x}\n"
	s, err := Parse("w.yml", []byte(spec))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Warnings) != 1 || s.Warnings[0].Error() != `w.yml:6:5: "nosy" binds /run, which holds the secrets tmpfs (/run/bulkhead/secrets): as root it reads the secrets root owns` {
		t.Fatalf("warnings %v", s.Warnings)
	}
	if m, err := Merge(s); err != nil || len(m.Warnings) != 1 {
		t.Fatalf("merged: %v %v", m.Warnings, err)
	}
	s, err = Parse("w.yml", []byte(strings.Replace(spec, "secrets:\n  - {name: db, source: gcp:x}\n", "", 1)))
	if err != nil || len(s.Warnings) != 0 {
		t.Fatalf("without secrets: %v %v", s.Warnings, err)
	}
}
