package main

import (
	"encoding/json"
	"io"
	"log"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/bulkhead-dev/bulkhead/builder/publish"
)

// TestUpdatePushAndPlan: a bundle pushed to a registry on 127.0.0.1 is
// planned against itself (only the manifest, signature and index to
// fetch) and against nothing in common from the bundle file.
func TestUpdatePushAndPlan(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	bundle, _ := smallBundle(t, time.Now().Add(time.Hour))
	ref := strings.TrimPrefix(srv.URL, "http://") + "/hosts/tiny:2.0.0"
	out, errOut, code := runCLI("update", "push", bundle, ref)
	if code != 0 {
		t.Fatalf("push: exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "pushed ") || !strings.Contains(out, ".sig") {
		t.Errorf("push printed %q", out)
	}
	out, errOut, code = runCLI("update", "plan", "--from", bundle, ref)
	if code != 0 {
		t.Fatalf("plan: exit %d: %s", code, errOut)
	}
	for _, want := range []string{"root", "kernel", "initrd", "fetch "} {
		if !strings.Contains(out, want) {
			t.Errorf("plan lacks %q:\n%s", want, out)
		}
	}
	t.Logf("plan:\n%s", out)
	out, _, code = runCLI("update", "plan", "--json", "--from", ref, ref)
	var p publish.Plan
	if err := json.Unmarshal([]byte(out), &p); err != nil || code != 0 {
		t.Fatalf("plan --json: exit %d, %v", code, err)
	}
	if p.Fetch != p.Meta || len(p.Components) != 3 {
		t.Errorf("the same version plans %d bytes to fetch beyond the %d of its index: %+v", p.Fetch-p.Meta, p.Meta, p)
	}
}
