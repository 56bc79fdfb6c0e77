// Package kmod loads the kernel modules shipped under /lib/modules/<release>:
// every one of them, each after its dependencies, in a fixed order (the
// index and the order come from internal/modindex). u-root's kmodule is not
// used: it probes in parallel (no fixed order) and links three
// decompressors in; here the kernel decompresses (finit_module's
// MODULE_INIT_COMPRESSED_FILE) when it can.
package kmod

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/bulkhead-dev/bulkhead/internal/modindex"
)

// compressedFile is finit_module's MODULE_INIT_COMPRESSED_FILE: the kernel
// decompresses the module itself (CONFIG_MODULE_DECOMPRESS).
const compressedFile = 4

// Result is the outcome of loading one module.
type Result struct {
	Path string
	Err  error // nil when loaded, or when it was loaded already
}

// LoadAll loads every module under dir in Order, skipping any whose
// dependency failed, and returns one Result per module plus the problems
// found while ordering. It never stops early: a host boots with what loads.
func LoadAll(dir string) ([]Result, error) {
	ix, err := modindex.Read(dir)
	if err != nil {
		return nil, err
	}
	order, problems := ix.Order()
	byPath := map[string]modindex.Module{}
	for _, m := range ix.Modules {
		byPath[m.Path] = m
	}
	failed := map[string]bool{}
	var results []Result
	for _, p := range order {
		var err error
		for _, d := range byPath[p].Deps {
			if failed[d] {
				err = fmt.Errorf("dependency %s failed", modindex.Name(d))
			}
		}
		if err == nil {
			err = Load(filepath.Join(dir, p))
		}
		failed[p] = err != nil
		results = append(results, Result{Path: p, Err: err})
	}
	return results, errors.Join(problems...)
}

// Load loads one module file; a module already loaded is not an error.
func Load(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("loading module: %w", err)
	}
	defer f.Close()
	var flags int
	if !strings.HasSuffix(path, ".ko") {
		flags = compressedFile
	}
	err = unix.FinitModule(int(f.Fd()), "", flags)
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("loading module %s: %w", modindex.Name(path), err)
	}
	return nil
}
