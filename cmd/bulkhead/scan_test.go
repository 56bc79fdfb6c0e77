package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulkhead-dev/bulkhead/builder/output"
	"github.com/bulkhead-dev/bulkhead/builder/rootfs"
)

func writeTestTar(t *testing.T, files map[string]string) string {
	t.Helper()
	tree := rootfs.New()
	for p, data := range files {
		tree.Put(&rootfs.Entry{Path: p, Kind: rootfs.KindFile, Mode: 0o644, Size: int64(len(data)), Content: rootfs.Content{Data: []byte(data)}})
	}
	p := filepath.Join(t.TempDir(), "host.tar")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := output.WriteTar(context.Background(), f, tree); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestScanArtifact(t *testing.T) {
	tarPath := writeTestTar(t, map[string]string{
		"etc/motd":              "hello\n",
		"root/.aws/credentials": "aws_access_key_id = AKIAZ3MSJV6QKQRSTUVW\n",
	})
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	page := filepath.Join(out, "scan.html")
	code := run(context.Background(), []string{"scan", "-o", out, tarPath, "--html", page}, &stdout, &stderr)
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr: %s", code, stderr.String())
	}
	if html, err := os.ReadFile(page); err != nil || !bytes.Contains(html, []byte(`class="comp"`)) || !bytes.Contains(html, []byte("secret aws-access-key-id at root/.aws/credentials:1")) {
		t.Errorf("scan --html: %v\n%.500s", err, html)
	}
	if !strings.Contains(stdout.String(), "secret aws-access-key-id at root/.aws/credentials:1") {
		t.Errorf("summary:\n%s", stdout.String())
	}
	for _, name := range []string{"sbom.spdx.json", "sbom.cdx.json", "scan.json", "scan.txt"} {
		if _, err := os.Stat(filepath.Join(out, name)); err != nil {
			t.Error(err)
		}
	}

	clean := writeTestTar(t, map[string]string{"etc/motd": "hello\n"})
	stdout.Reset()
	if code := run(context.Background(), []string{"scan", "--json", clean}, &stdout, &stderr); code != 0 {
		t.Fatalf("clean host: exit %d; %s", code, stdout.String())
	}
	var rep struct {
		Failed  []string `json:"failed"`
		Secrets []any    `json:"secrets"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil || len(rep.Failed) != 0 {
		t.Errorf("json = %s (%v)", stdout.String(), err)
	}

	stderr.Reset()
	disk := filepath.Join(t.TempDir(), "disk.img")
	img := make([]byte, 1024)
	img[510], img[511] = 0x55, 0xaa
	os.WriteFile(disk, img, 0o644)
	// An MBR signature without a GPT: a clear error naming the artifact.
	if code := run(context.Background(), []string{"scan", disk}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), disk+": reading partition table") {
		t.Errorf("disk image without a GPT: exit %d, stderr %q", code, stderr.String())
	}
}

func TestScanSpec(t *testing.T) {
	spec := fixture(t)
	store := t.TempDir()
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"scan", "--store", store, "-o", out, spec}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d; stdout %s; stderr %s", code, stdout.String(), stderr.String())
	}
	cdx, err := os.ReadFile(filepath.Join(out, "sbom.cdx.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{"test/kernel", "test/init", "test/web"} {
		if !bytes.Contains(cdx, []byte(ref)) {
			t.Errorf("SBOM does not list %s", ref)
		}
	}

	data, _ := os.ReadFile(spec)
	data = append(data, []byte("  - path: etc/deploy.env\n    contents: \"DB=postgres://app:Xk29fLq7Zp@db:5432/app\"\n")...)
	os.WriteFile(spec, data, 0o644)
	stdout.Reset()
	if code := run(context.Background(), []string{"scan", "--store", store, spec}, &stdout, &stderr); code != 1 {
		t.Fatalf("exit %d, want 1; stdout %s", code, stdout.String())
	}
	for _, want := range []string{"secret url-credentials at etc/deploy.env:1", "secret url-credentials at spec host.yml:"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, stdout.String())
		}
	}
}
