package kmod

import (
	"path/filepath"
	"testing"
)

func TestLoadMissingFile(t *testing.T) {
	if err := Load(filepath.Join(t.TempDir(), "nope.ko")); err == nil {
		t.Fatal("want error")
	}
}
