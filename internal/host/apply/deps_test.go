package apply_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestOnHostDependencies: the apply, the registry pull and the on-host binaries link no
// builder package, no Sigstore and no registry client.
func TestOnHostDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps",
		"github.com/bulkhead-dev/bulkhead/internal/host/apply",
		"github.com/bulkhead-dev/bulkhead/internal/update/pull",
		"github.com/bulkhead-dev/bulkhead/internal/update/chunk",
		"github.com/bulkhead-dev/bulkhead/cmd/init",
		"github.com/bulkhead-dev/bulkhead/cmd/stage0").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{"github.com/bulkhead-dev/bulkhead/builder/", "github.com/sigstore/", "github.com/google/go-containerregistry/"} {
			if strings.HasPrefix(dep, banned) {
				t.Errorf("on-host code depends on %s", dep)
			}
		}
	}
}
