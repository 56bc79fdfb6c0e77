package attempts

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestBeginEndBounded(t *testing.T) {
	p := filepath.Join(t.TempDir(), "lib", "boot-attempts.json")
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for i := range Keep + 5 {
		e := fmt.Sprintf("bulkhead-%d+3.conf", i)
		if err := Begin(p, e, fmt.Sprint(i), t0.Add(time.Duration(i)*time.Minute)); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			if err := End(p, e, Bad, "service web not healthy", t0.Add(time.Duration(i)*time.Minute+time.Second)); err != nil {
				t.Fatal(err)
			}
		}
	}
	list, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != Keep || list[0].Version != "5" || list[Keep-1].Version != fmt.Sprint(Keep+4) {
		t.Fatalf("kept %d attempts from %q to %q", len(list), list[0].Version, list[len(list)-1].Version)
	}
	if list[1].Outcome != Bad || list[1].Reason == "" || list[0].Outcome != Started || !list[0].Ended.IsZero() {
		t.Errorf("outcomes: %+v %+v", list[0], list[1])
	}
	if tmp, _ := filepath.Glob(filepath.Join(filepath.Dir(p), ".*.tmp-*")); len(tmp) != 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
}

func TestDamagedRecordIsReplaced(t *testing.T) {
	p := filepath.Join(t.TempDir(), "boot-attempts.json")
	if err := os.WriteFile(p, []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(p); err == nil {
		t.Fatal("Load of a damaged record: no error")
	}
	if err := Begin(p, "a+3.conf", "a", time.Unix(0, 0)); err != nil {
		t.Fatal(err)
	}
	if list, err := Load(p); err != nil || len(list) != 1 {
		t.Fatalf("after Begin: %v, %v", list, err)
	}
}
