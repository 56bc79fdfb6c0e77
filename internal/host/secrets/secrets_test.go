package secrets

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/internal/host/backoff"
	"github.com/bulkhead-dev/bulkhead/internal/host/metadata"
	"github.com/bulkhead-dev/bulkhead/internal/host/metadata/metadatatest"
	"github.com/bulkhead-dev/bulkhead/internal/secretspec"
)

// lines collects console lines.
type lines struct {
	mu sync.Mutex
	l  []string
}

func (c *lines) logf(f string, a ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.l = append(c.l, fmt.Sprintf(f, a...))
}

func (c *lines) all() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.l, "\n")
}

// TestMissingThenRotated: a secret the metadata service does not have yet
// keeps its service from being prepared (the error names secret and
// source); once served, the copy appears with the use's mode; a changed
// value replaces it atomically and notifies the service with its signal.
// No console line holds a value.
func TestMissingThenRotated(t *testing.T) {
	md := metadatatest.New()
	srv := httptest.NewServer(md)
	defer srv.Close()
	dir := t.TempDir()
	var log lines
	notified := make(chan string, 4)
	st, err := New([]secretspec.Secret{{Name: "db", Source: "ec2:meta-data/tags/instance/db", Refresh: "50ms", Timeout: "1s"}},
		WithDir(dir), WithProvider(secretspec.EC2, &metadata.EC2{Endpoint: srv.URL}), WithLog(log.logf),
		WithBackoff(backoff.Policy{Initial: 10 * time.Millisecond, Max: 40 * time.Millisecond, Healthy: time.Second}),
		WithNotify(func(svc string, sig int) { notified <- fmt.Sprintf("%s:%d", svc, sig) }))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go st.Run(ctx)
	uid := uint32(os.Getuid())
	uses := []secretspec.Use{{Name: "db", Path: "/run/secrets/db", UID: uid, GID: uint32(os.Getgid()), Mode: 0o400, Signal: "SIGHUP"}}
	err = st.Prepare("web", uses)
	if err == nil || !strings.Contains(err.Error(), "waiting for secret db from ec2:meta-data/tags/instance/db") {
		t.Fatalf("prepare before fetch: %v", err)
	}
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(log.all(), "retrying in"); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no retry line:\n%s", log.all())
		}
	}
	if err := st.Prepare("web", uses); err == nil || !strings.Contains(err.Error(), "not there (yet)") {
		t.Fatalf("prepare after a miss: %v", err)
	}
	md.SetEC2("meta-data/tags/instance/db", []byte("first-value"))
	select {
	case <-st.Ready("db"):
	case <-time.After(5 * time.Second):
		t.Fatalf("never fetched:\n%s", log.all())
	}
	if err := st.Prepare("web", uses); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "web", "0", "db")
	fi, err := os.Stat(file)
	if err != nil || fi.Mode().Perm() != 0o400 {
		t.Fatalf("copy: %v %v", fi, err)
	}
	md.SetEC2("meta-data/tags/instance/db", []byte("second-value"))
	select {
	case n := <-notified:
		if n != "web:1" {
			t.Fatalf("notified %s", n)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("no rotation:\n%s", log.all())
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != "second-value" {
		t.Fatalf("rotated copy %q %v", b, err)
	}
	ents, _ := os.ReadDir(filepath.Dir(file))
	if len(ents) != 1 {
		t.Fatalf("left behind: %v", ents)
	}
	out := log.all()
	if !strings.Contains(out, "secret db: fetched from ec2:meta-data/tags/instance/db") ||
		!strings.Contains(out, "secret db: ec2:meta-data/tags/instance/db: not there (yet); retrying in") {
		t.Fatalf("console:\n%s", out)
	}
	if strings.Contains(out, "value") {
		t.Fatalf("a value reached the console:\n%s", out)
	}
}
