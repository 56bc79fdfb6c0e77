package main

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCAInitIssue makes a CA and a client certificate and has openssl
// check the chain and the key usage; keys are never overwritten.
func TestCAInitIssue(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"ca", "init", "--dir", dir}, &stdout, &stderr); code != 0 {
		t.Fatalf("ca init: exit %d: %s", code, stderr.String())
	}
	if code := run(context.Background(), []string{"ca", "issue", "--dir", dir, "alice"}, &stdout, &stderr); code != 0 {
		t.Fatalf("ca issue: exit %d: %s", code, stderr.String())
	}
	out, err := exec.Command("openssl", "verify", "-purpose", "sslclient", "-CAfile", filepath.Join(dir, "ca.pem"), filepath.Join(dir, "alice.pem")).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "alice.pem: OK") {
		t.Fatalf("openssl verify: %v\n%s", err, out)
	}
	stderr.Reset()
	if code := run(context.Background(), []string{"ca", "init", "--dir", dir}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "exists") {
		t.Fatalf("second ca init: exit %d: %s", code, stderr.String())
	}
	if code := run(context.Background(), []string{"ca", "issue", "--dir", dir, "../evil"}, &stdout, &stderr); code != 2 {
		t.Fatalf("ca issue ../evil: exit %d", code)
	}
}
