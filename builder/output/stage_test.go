package output

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/bulkhead-dev/bulkhead/internal/test/testfile"
)

func TestStageCommitMovesEverything(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(out, "host-kernel-check.txt"), []byte("stale"), 0o644)
	os.WriteFile(filepath.Join(out, "host.tar"), []byte("old"), 0o644)
	s, err := NewStage(out)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Abort()
	for _, n := range []string{"host.tar", "host.img"} {
		if err := WriteFile(filepath.Join(s.Dir(), n), []byte("new "+n)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(s.Dir(), ".scratch"), 0o700); err != nil {
		t.Fatal(err)
	}
	s.Obsolete("host-kernel-check.txt")
	if got := s.Final(filepath.Join(s.Dir(), "host.img")); got != filepath.Join(out, "host.img") {
		t.Errorf("Final = %s", got)
	}
	if got := testfile.Names(t, out); len(got) != 3 { // the old files and the stage
		t.Fatalf("before commit: %v", got)
	}
	if err := s.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := testfile.Names(t, out); len(got) != 2 || got[0] != "host.img" || got[1] != "host.tar" {
		t.Fatalf("after commit: %v", got)
	}
	if b, _ := os.ReadFile(filepath.Join(out, "host.tar")); string(b) != "new host.tar" {
		t.Errorf("host.tar = %q", b)
	}
}

func TestStageAbortLeavesOutputAsItWas(t *testing.T) {
	out := t.TempDir()
	os.WriteFile(filepath.Join(out, "host.tar"), []byte("old"), 0o644)
	s, err := NewStage(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(filepath.Join(s.Dir(), "host.tar"), []byte("new")); err != nil {
		t.Fatal(err)
	}
	if err := s.Abort(); err != nil {
		t.Fatal(err)
	}
	if got := testfile.Names(t, out); len(got) != 1 || got[0] != "host.tar" {
		t.Fatalf("after abort: %v", got)
	}
	if b, _ := os.ReadFile(filepath.Join(out, "host.tar")); string(b) != "old" {
		t.Errorf("host.tar = %q", b)
	}
	if err := s.Commit(); err == nil {
		t.Error("commit after abort succeeded")
	}
}

func TestNewStageRemovesOnlyStaleStages(t *testing.T) {
	out := t.TempDir()
	// A killed build's stage: nobody holds its lock.
	stale := filepath.Join(out, StagePrefix+"123")
	os.Mkdir(stale, 0o755)
	os.WriteFile(filepath.Join(stale, ".host.img.tmp-1"), make([]byte, 1<<20), 0o644)
	// A running build's stage.
	live, err := NewStage(out)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Abort()
	// Not ours: kept.
	os.WriteFile(filepath.Join(out, ".bulkhead-notes"), nil, 0o644)

	next, err := NewStage(out)
	if err != nil {
		t.Fatal(err)
	}
	defer next.Abort()
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale stage still there: %v", err)
	}
	if _, err := os.Stat(live.Dir()); err != nil {
		t.Errorf("a running build's stage was removed: %v", err)
	}
	if _, err := os.Stat(filepath.Join(out, ".bulkhead-notes")); err != nil {
		t.Errorf("a file without the prefix was removed: %v", err)
	}
}
