package buildid

import (
	"os"
	"strings"
	"testing"
)

// TestGoBuildID reads the build ID of this test binary, which the go
// command gives every binary it links.
func TestGoBuildID(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	id, err := GoBuildID(exe)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(id, "/"); n < 1 || len(id) < 20 {
		t.Fatalf("build ID %q does not look like one (action/content IDs)", id)
	}
	if v, err := Program(); err != nil || v != "buildid:"+id {
		t.Fatalf("Program = %q, %v; want buildid:%s", v, err, id)
	}
}
