package hostapi

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// backend is a host as the API sees it, with the uploads it received.
type backend struct {
	mu       sync.Mutex
	uploads  [][]byte
	reboots  int
	block    chan struct{} // when set, Update waits on it
	refuse   bool
	rollback string
}

func (b *backend) Status(context.Context) (Status, error) {
	return Status{Hostname: "h1", Version: "1.0", Entries: []Entry{{File: "bulkhead-1.0.conf", Version: "1.0", Blessed: true, Running: true}}}, nil
}

func (b *backend) Update(ctx context.Context, path string) (UpdateResult, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return UpdateResult{}, err
	}
	if b.block != nil {
		<-b.block
	}
	if b.refuse {
		return UpdateResult{}, fmt.Errorf("bundle %s: signature: %w by a trusted key", filepath.Base(path), ErrRefused)
	}
	b.mu.Lock()
	b.uploads = append(b.uploads, data)
	b.mu.Unlock()
	return UpdateResult{Version: "2.0", Entry: "loader/entries/bulkhead-2.0+3.conf", KeyID: "k"}, nil
}

func (b *backend) Reboot() { b.mu.Lock(); b.reboots++; b.mu.Unlock() }

func (b *backend) Rollback(context.Context) (string, error) {
	if b.rollback == "" {
		return "", fmt.Errorf("no other blessed version: %w", ErrRefused)
	}
	return b.rollback, nil
}

func (b *backend) Log(name string, lines int) ([]byte, error) {
	if name != "init" {
		return nil, os.ErrNotExist
	}
	return []byte(fmt.Sprintf("last %d lines\n", lines)), nil
}

type fixture struct {
	addr, spool, known string
	caCert, caKey      []byte
	client             tls.Certificate
	backend            *backend
	fingerprint        string
}

func start(t *testing.T, maxUpload int64) *fixture {
	t.Helper()
	now := time.Now()
	caCert, caKey, err := NewCA("operators", now)
	if err != nil {
		t.Fatal(err)
	}
	cc, ck, err := IssueClient(caCert, caKey, "alice", ClientValidity, now)
	if err != nil {
		t.Fatal(err)
	}
	client, err := tls.X509KeyPair(cc, ck)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := CAPool(caCert)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	id, fp, err := LoadOrCreateIdentity(filepath.Join(dir, "id"), "h1", now)
	if err != nil {
		t.Fatal(err)
	}
	if _, fp2, err := LoadOrCreateIdentity(filepath.Join(dir, "id"), "h1", now); err != nil || fp2 != fp {
		t.Fatalf("identity not kept: %s then %s, %v", fp, fp2, err)
	}
	f := &fixture{spool: filepath.Join(dir, "spool"), known: filepath.Join(dir, "known_hosts"),
		caCert: caCert, caKey: caKey, client: client, backend: &backend{}, fingerprint: fp}
	srv, err := NewServer("127.0.0.1:0", ServerConfig{Backend: f.backend, ClientCAs: pool, Identity: id, SpoolDir: f.spool, MaxUpload: maxUpload})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = ln.Addr().String()
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { srv.Close() })
	return f
}

func (f *fixture) newClient(t *testing.T, cert tls.Certificate) *Client {
	t.Helper()
	c, err := NewClient(ClientConfig{Addr: f.addr, Cert: cert, KnownHosts: f.known})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestStatusTrustOnFirstUse(t *testing.T) {
	f := start(t, 0)
	ctx := context.Background()
	var first string
	c, _ := NewClient(ClientConfig{Addr: f.addr, Cert: f.client, KnownHosts: f.known, FirstUse: func(_, fp string) { first = fp }})
	st, err := c.Status(ctx)
	if err != nil || st.Hostname != "h1" || len(st.Entries) != 1 || !st.Entries[0].Blessed {
		t.Fatalf("status = %+v, %v", st, err)
	}
	if first != f.fingerprint {
		t.Fatalf("first use recorded %q, host is %q", first, f.fingerprint)
	}
	// Known now: a second client checks against the record.
	if _, err := f.newClient(t, f.client).Status(ctx); err != nil {
		t.Fatal(err)
	}
	// A host that changed its certificate is refused.
	if err := os.WriteFile(f.known, []byte(f.addr+" sha256:"+strings.Repeat("ab", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := f.newClient(t, f.client).Status(ctx); !errors.Is(err, ErrHostKeyChanged) {
		t.Fatalf("changed host certificate: %v", err)
	}
	// A pinned fingerprint wins over the file.
	c, _ = NewClient(ClientConfig{Addr: f.addr, Cert: f.client, Fingerprint: f.fingerprint})
	if _, err := c.Status(ctx); err != nil {
		t.Fatalf("pinned: %v", err)
	}
}

func TestClientCertificateRequired(t *testing.T) {
	f := start(t, 0)
	ctx := context.Background()
	// Signed by another CA.
	otherCA, otherKey, _ := NewCA("strangers", time.Now())
	cc, ck, _ := IssueClient(otherCA, otherKey, "mallory", ClientValidity, time.Now())
	stranger, _ := tls.X509KeyPair(cc, ck)
	if _, err := f.newClient(t, stranger).Status(ctx); err == nil {
		t.Fatal("a client certificate from another CA was accepted")
	}
	// None at all.
	if _, err := f.newClient(t, tls.Certificate{}).Status(ctx); err == nil {
		t.Fatal("a client without a certificate was accepted")
	}
	// TLS 1.2 is refused even with a good certificate.
	conn, err := tls.Dial("tcp", f.addr, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12, Certificates: []tls.Certificate{f.client}})
	if err == nil {
		conn.Close()
		t.Fatal("TLS 1.2 accepted")
	}
	// The server still serves the good client.
	if _, err := f.newClient(t, f.client).Status(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestUpdateUpload(t *testing.T) {
	f := start(t, 1<<20)
	ctx := context.Background()
	c := f.newClient(t, f.client)
	bundle := bytes.Repeat([]byte("bundle"), 1000)
	res, err := c.Update(ctx, bytes.NewReader(bundle), int64(len(bundle)), true)
	if err != nil || res.Version != "2.0" || !res.Reboot {
		t.Fatalf("update = %+v, %v", res, err)
	}
	if len(f.backend.uploads) != 1 || !bytes.Equal(f.backend.uploads[0], bundle) {
		t.Fatal("the backend did not get the uploaded bytes")
	}
	time.Sleep(time.Second)
	f.backend.mu.Lock()
	if f.backend.reboots != 1 {
		t.Errorf("reboots = %d after update?reboot=1", f.backend.reboots)
	}
	f.backend.mu.Unlock()

	// Too large: refused before the backend sees it, nothing spooled.
	big := make([]byte, 2<<20)
	if _, err := c.Update(ctx, bytes.NewReader(big), int64(len(big)), false); err == nil || !strings.Contains(err.Error(), "413") {
		t.Fatalf("oversized upload: %v", err)
	}
	// Too large without a length (chunked): cut off while spooling.
	if _, err := c.Update(ctx, struct{ *bytes.Reader }{bytes.NewReader(big)}, -1, false); err == nil || !strings.Contains(err.Error(), "413") {
		t.Fatalf("oversized chunked upload: %v", err)
	}
	// A refusal is 422 with the backend's reason; the host keeps serving.
	f.backend.refuse = true
	if _, err := c.Update(ctx, bytes.NewReader(bundle), int64(len(bundle)), false); err == nil ||
		!strings.Contains(err.Error(), "422") || !strings.Contains(err.Error(), "signature") {
		t.Fatalf("refused bundle: %v", err)
	}
	if ents, _ := os.ReadDir(f.spool); len(ents) != 0 {
		t.Errorf("spool holds %d files after the uploads", len(ents))
	}
	if _, err := c.Status(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestOneUpdateAtATime(t *testing.T) {
	f := start(t, 0)
	f.backend.block = make(chan struct{})
	ctx := context.Background()
	c := f.newClient(t, f.client)
	if _, err := c.Status(ctx); err != nil { // record the host first
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.Update(ctx, strings.NewReader("one"), 3, false)
		done <- err
	}()
	time.Sleep(500 * time.Millisecond)
	_, err := f.newClient(t, f.client).Update(ctx, strings.NewReader("two"), 3, false)
	close(f.backend.block)
	if err == nil || !strings.Contains(err.Error(), "409") {
		t.Fatalf("second update during the first: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestLogsAndRollback(t *testing.T) {
	f := start(t, 0)
	ctx := context.Background()
	c := f.newClient(t, f.client)
	b, err := c.Logs(ctx, "init", 50)
	if err != nil || string(b) != "last 50 lines\n" {
		t.Fatalf("logs = %q, %v", b, err)
	}
	if _, err := c.Logs(ctx, "../etc/shadow", 10); err == nil || !strings.Contains(err.Error(), "400") {
		t.Fatalf("bad log name: %v", err)
	}
	if _, err := c.Logs(ctx, "nope", 10); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("missing log: %v", err)
	}
	if _, err := c.Rollback(ctx, false); err == nil || !strings.Contains(err.Error(), "no other blessed version") {
		t.Fatalf("rollback without a version: %v", err)
	}
	f.backend.rollback = "bulkhead-1.0.conf"
	if to, err := c.Rollback(ctx, false); err != nil || to != "bulkhead-1.0.conf" {
		t.Fatalf("rollback = %q, %v", to, err)
	}
	// Garbage on the port does not stop the server.
	conn, err := net.Dial("tcp", f.addr)
	if err == nil {
		conn.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
		conn.Close()
	}
	resp, err := http.Get("http://" + f.addr + PathStatus)
	if err == nil {
		resp.Body.Close()
	}
	if _, err := c.Status(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestUpdateFromURL: the host downloads the bundle itself; a URL that is
// not http(s), a missing file and an oversized one are refused and
// nothing stays in the spool.
func TestUpdateFromURL(t *testing.T) {
	f := start(t, 1<<20)
	ctx := context.Background()
	c := f.newClient(t, f.client)
	bundle := bytes.Repeat([]byte("from a url "), 5000)
	files := http.NewServeMux()
	files.HandleFunc("/v2.bundle", func(w http.ResponseWriter, _ *http.Request) { w.Write(bundle) })
	files.HandleFunc("/big.bundle", func(w http.ResponseWriter, _ *http.Request) { w.Write(make([]byte, 2<<20)) })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: files}
	go srv.Serve(ln)
	defer srv.Close()
	base := "http://" + ln.Addr().String()
	res, err := c.UpdateFrom(ctx, base+"/v2.bundle", false)
	if err != nil || res.Version != "2.0" {
		t.Fatalf("update from url = %+v, %v", res, err)
	}
	if len(f.backend.uploads) != 1 || !bytes.Equal(f.backend.uploads[0], bundle) {
		t.Fatal("the backend did not get the served bytes")
	}
	for u, want := range map[string]string{
		"file:///etc/passwd":     "422",
		base + "/missing.bundle": "502",
		base + "/big.bundle":     "413",
		"http://127.0.0.1:1/x":   "502",
	} {
		if _, err := c.UpdateFrom(ctx, u, false); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %s", u, err, want)
		}
	}
	if ents, _ := os.ReadDir(f.spool); len(ents) != 0 {
		t.Errorf("spool holds %d files", len(ents))
	}
}
