package main

import (
	"bytes"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/bulkhead-dev/bulkhead/builder/recipe"
)

func loadRecipes(t *testing.T) []*recipe.Recipe {
	t.Helper()
	dirs, err := filepath.Glob("../../images/*/image.yml")
	if err != nil || len(dirs) < 5 {
		t.Fatalf("recipes: %v, %v", dirs, err)
	}
	var out []*recipe.Recipe
	for _, d := range dirs {
		r, err := recipe.Load(d)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// TestRecipesFor: make demo builds only what examples/minimal.yml uses;
// the hardened kernel (a quarter of an hour) is not among it.
func TestRecipesFor(t *testing.T) {
	all := loadRecipes(t)
	refs := func(rs []*recipe.Recipe) (out []string) {
		for _, r := range rs {
			out = append(out, r.Ref())
		}
		return out
	}
	var stderr bytes.Buffer
	got, err := recipesFor(all, []string{"../../examples/minimal.yml"}, "kernel+initrd", &stderr)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"bulkhead/hello:dev", "bulkhead/init:dev", "bulkhead/kernel:6.1-cloud", "bulkhead/oneshot:dev", "bulkhead/runc:v1.5.3"}
	if !reflect.DeepEqual(refs(got), want) {
		t.Errorf("kernel+initrd: %v, want %v", refs(got), want)
	}
	if !strings.Contains(stderr.String(), "bulkhead/kernel:6.1-hardened") || !strings.Contains(stderr.String(), "skipped: not used by") {
		t.Errorf("stderr does not say what was skipped:\n%s", stderr.String())
	}
	got, err = recipesFor(all, []string{"../../examples/minimal.yml"}, "raw-efi", &stderr)
	if err != nil {
		t.Fatal(err)
	}
	if want := append(want, "bulkhead/systemd-boot:252"); !reflect.DeepEqual(refs(got), want) {
		t.Errorf("raw-efi: %v, want %v", refs(got), want)
	}
	got, err = recipesFor(all, []string{"../../examples/hardened.yml"}, "kernel+initrd", &stderr)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(refs(got), " "), "bulkhead/kernel:6.1-hardened") {
		t.Errorf("hardened.yml: %v lacks the hardened kernel", refs(got))
	}
}
