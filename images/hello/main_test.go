package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestHandler(t *testing.T) {
	srv := httptest.NewServer(handler("box"))
	defer srv.Close()
	for path, want := range map[string]string{"/": "hello from box (hello dev)\n", "/healthz": "ok\n"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != want {
			t.Errorf("GET %s = %d %q, want 200 %q", path, resp.StatusCode, body, want)
		}
	}
	resp, err := http.Get(srv.URL + "/nothing")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /nothing = %d, want 404", resp.StatusCode)
	}
}

func TestCrashAfter(t *testing.T) {
	var stdout, stderr bytes.Buffer
	start := time.Now()
	code := run([]string{"-listen", "127.0.0.1:0", "-crash-after", "200ms"}, &stdout, &stderr)
	if code != 3 {
		t.Fatalf("exit %d, want 3; stderr: %s", code, stderr.String())
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("crashed after %s, before 200ms", d)
	}
}

// TestDigest: /digest answers a file's SHA-256, mode and owner, 404 for a
// missing file, and is absent without -digests.
func TestDigest(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "s")
	if err := os.WriteFile(p, []byte("value"), 0o400); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(withDigests(handler("box"), io.Discard))
	defer srv.Close()
	var d fileDigest
	resp, err := http.Get(srv.URL + "/digest?path=" + p)
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&d)
	resp.Body.Close()
	sum := sha256.Sum256([]byte("value"))
	if resp.StatusCode != 200 || d.SHA256 != hex.EncodeToString(sum[:]) || d.Mode != "-r--------" || d.UID != uint32(os.Getuid()) {
		t.Fatalf("digest %d %+v", resp.StatusCode, d)
	}
	resp, err = http.Get(srv.URL + "/digest?path=" + p + "-none")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("missing file: %d", resp.StatusCode)
	}
	plain := httptest.NewServer(handler("box"))
	defer plain.Close()
	resp, err = http.Get(plain.URL + "/digest?path=" + p)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("without -digests: %d", resp.StatusCode)
	}
}
