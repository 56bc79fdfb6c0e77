package resolve

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNotStoredNamesTheStore: an image neither the store nor its registry
// has is reported with the store looked in, and a stored name it is
// probably a typo of, or how to fill an empty store.
func TestNotStoredNamesTheStore(t *testing.T) {
	reg := newRegistry(t)
	reg.srv.Close()
	empty := newStore(t)
	_, err := newResolver(t, WithStore(empty)).Resolve(context.Background(), reg.host+"/bulkhead/hello:dev")
	if err == nil || !strings.Contains(err.Error(), "not in the image store "+empty.Dir()+", which is empty (build the component images with make images") ||
		!strings.Contains(err.Error(), "registry "+reg.host+" is unreachable") {
		t.Errorf("empty store: %v", err)
	}
	store := newStore(t)
	if _, err := store.WriteImage(reg.host+"/bulkhead/hello:dev", testImage(t, "amd64", []byte("x"))); err != nil {
		t.Fatal(err)
	}
	_, err = newResolver(t, WithStore(store)).Resolve(context.Background(), reg.host+"/bulkhead/helo:dev")
	if want := "not in the image store " + store.Dir() + " (did you mean " + reg.host + "/bulkhead/hello:dev?)"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("typo: %v, want %q", err, want)
	}
	_, err = newResolver(t, WithStore(store)).Resolve(context.Background(), reg.host+"/other/thing:1")
	if err == nil || !strings.Contains(err.Error(), "not in the image store "+store.Dir()+", and registry") {
		t.Errorf("unrelated name: %v", err)
	}
}

func TestLoadSpecLock(t *testing.T) {
	dir := t.TempDir()
	spec := filepath.Join(dir, "edge.yml")
	if _, err := LoadSpecLock(spec, true); err == nil || err.Error() != filepath.Join(dir, "edge.lock")+" not found: run bulkhead lock "+spec {
		t.Errorf("locked, no lock file: %v", err)
	}
	if l, err := LoadSpecLock(spec, false); err != nil || len(l.Images) != 0 {
		t.Errorf("unlocked, no lock file: %v, %v", l, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "edge.lock"), []byte("version: 1\nimages: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadSpecLock(spec, true); err != nil {
		t.Errorf("locked, lock file present: %v", err)
	}
}
