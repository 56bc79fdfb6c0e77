package healthcheck

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestProblems(t *testing.T) {
	for _, c := range []struct {
		check Check
		want  string // "" for valid
	}{
		{Check{HTTP: "http://127.0.0.1:8080/healthz"}, ""},
		{Check{TCP: "127.0.0.1:5432", Interval: "5s", Timeout: "500ms", Retries: 2, StartPeriod: "30s"}, ""},
		{Check{Exec: []string{"/bin/check"}}, ""},
		{Check{}, "set exactly one of http, tcp and exec"},
		{Check{HTTP: "http://x/", TCP: "x:1"}, "set exactly one of http, tcp and exec"},
		{Check{HTTP: "ftp://x/"}, `http: "ftp://x/" is not an http:// or https:// URL`},
		{Check{TCP: "localhost"}, `tcp: "localhost" is not HOST:PORT`},
		{Check{TCP: "x:99999"}, `tcp: "x:99999" is not HOST:PORT`},
		{Check{TCP: "x:1", Interval: "0s"}, `interval: expected a positive duration such as 2s, got "0s"`},
		{Check{TCP: "x:1", Timeout: "soon"}, `timeout: expected a positive duration such as 2s, got "soon"`},
		{Check{TCP: "x:1", Retries: -1}, "retries: must not be negative, got -1"},
	} {
		ps := c.check.Problems()
		got := ""
		if len(ps) > 0 {
			got = ps[0].Error()
		}
		if got != c.want {
			t.Errorf("%+v: %q, want %q", c.check, got, c.want)
		}
	}
}

func TestTimingDefaults(t *testing.T) {
	got := Check{TCP: "x:1"}.Timing()
	if got != (Timing{Interval: DefaultInterval, Timeout: DefaultTimeout, Retries: DefaultRetries}) {
		t.Errorf("defaults: %+v", got)
	}
	got = Check{TCP: "x:1", Interval: "5s", Timeout: "2s", Retries: 7, StartPeriod: "1m"}.Timing()
	if got != (Timing{Interval: 5 * time.Second, Timeout: 2 * time.Second, StartPeriod: time.Minute, Retries: 7}) {
		t.Errorf("set: %+v", got)
	}
}

func TestMarshalRead(t *testing.T) {
	dir := t.TempDir()
	if c, err := Read(dir); c != nil || err != nil {
		t.Fatalf("no file: %v, %v", c, err)
	}
	want := Check{HTTP: "http://127.0.0.1:8080/healthz", Interval: "1s"}
	b, err := Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, FileName), b, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := Read(dir)
	if err != nil || got.HTTP != want.HTTP || got.Interval != want.Interval {
		t.Fatalf("Read = %+v, %v", got, err)
	}
	os.WriteFile(filepath.Join(dir, FileName), []byte(`{"tcp":"nope"}`), 0o644)
	if _, err := Read(dir); err == nil || !strings.Contains(err.Error(), "is not HOST:PORT") {
		t.Fatalf("invalid file: %v", err)
	}
	os.WriteFile(filepath.Join(dir, FileName), make([]byte, maxFile+1), 0o644)
	if _, err := Read(dir); err == nil || !strings.Contains(err.Error(), "over") {
		t.Fatalf("oversized file: %v", err)
	}
}

func TestProbeNetwork(t *testing.T) {
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(2 * time.Second)
		}
		w.WriteHeader(status)
	}))
	defer srv.Close()
	ctx := context.Background()
	if err := ProbeNetwork(ctx, Check{HTTP: srv.URL + "/healthz"}, time.Second, nil); err != nil {
		t.Errorf("healthy http: %v", err)
	}
	status = http.StatusServiceUnavailable
	if err := ProbeNetwork(ctx, Check{HTTP: srv.URL}, time.Second, nil); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("503: %v", err)
	}
	status = http.StatusOK
	if err := ProbeNetwork(ctx, Check{HTTP: srv.URL + "/slow"}, 200*time.Millisecond, nil); err == nil {
		t.Error("a probe slower than its timeout passed")
	}
	addr := strings.TrimPrefix(srv.URL, "http://")
	if err := ProbeNetwork(ctx, Check{TCP: addr}, time.Second, nil); err != nil {
		t.Errorf("open tcp port: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	if err := ProbeNetwork(ctx, Check{TCP: closed}, time.Second, nil); err == nil {
		t.Error("closed tcp port passed")
	}
	// The dialer is used: one that refuses everything fails the probe.
	refuse := func(context.Context, string, string) (net.Conn, error) {
		return nil, &net.OpError{Op: "dial", Err: os.ErrPermission}
	}
	if err := ProbeNetwork(ctx, Check{TCP: addr}, time.Second, refuse); err == nil {
		t.Error("probe ignored its dialer")
	}
}
