package main

import (
	"os/exec"
	"strings"
	"testing"
)

// onHostBanned are the import-path prefixes the on-host binaries must not
// link: the build pipeline, image signing and registry clients, the CLI's
// qemu runner and test helpers. What builder and host share lives in
// small internal/ packages (bootparam, verity, modindex, ...).
var onHostBanned = []string{
	"github.com/bulkhead-dev/bulkhead/builder/",
	"github.com/bulkhead-dev/bulkhead/internal/qemu",
	"github.com/bulkhead-dev/bulkhead/internal/test/",
	"github.com/sigstore/",
	"github.com/google/go-containerregistry/",
}

// banned lists the packages pkgs link (go list -deps) that match a prefix.
func banned(t *testing.T, prefixes []string, pkgs ...string) []string {
	t.Helper()
	out, err := exec.Command("go", append([]string{"list", "-deps"}, pkgs...)...).Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var hits []string
	for _, dep := range strings.Fields(string(out)) {
		for _, p := range prefixes {
			if strings.HasPrefix(dep, p) {
				hits = append(hits, dep)
			}
		}
	}
	return hits
}

// TestOnHostLinksNoBuilder: the init and stage 0 link none of the builder.
// The same check on the CLI, which links all of it, proves it can fail.
func TestOnHostLinksNoBuilder(t *testing.T) {
	// tpmseal too, until the init links it.
	if hits := banned(t, onHostBanned, "../../cmd/init", "../../cmd/stage0", "../../internal/host/tpmseal"); len(hits) > 0 {
		t.Errorf("on-host binaries link %s", strings.Join(hits, ", "))
	}
	if hits := banned(t, onHostBanned, "../../cmd/bulkhead"); len(hits) == 0 {
		t.Error("the check finds nothing banned in cmd/bulkhead either: it is broken")
	}
}

// TestStage0LinksNoContainerd: stage 0 stays a few MB (cmd/stage0's
// reason to exist), so it links no containerd, runc or gRPC.
func TestStage0LinksNoContainerd(t *testing.T) {
	heavy := []string{"github.com/containerd/", "github.com/opencontainers/runc", "google.golang.org/grpc"}
	if hits := banned(t, heavy, "../../cmd/stage0"); len(hits) > 0 {
		t.Errorf("cmd/stage0 links %s", strings.Join(hits, ", "))
	}
	if hits := banned(t, heavy, "../../cmd/init"); len(hits) == 0 {
		t.Error("the check finds no containerd in cmd/init either: it is broken")
	}
}
