package main

import (
	"bytes"
	"errors"
	"flag"

	"github.com/bulkhead-dev/bulkhead/builder/config"
	"github.com/bulkhead-dev/bulkhead/internal/regfile"
)

// specLimits bound what reading a spec may cost (--max-spec-size,
// --max-spec-expanded).
type specLimits struct {
	size, expanded sizeValue
}

// addSpecLimitFlags registers the spec limit flags on fs.
func addSpecLimitFlags(fs *flag.FlagSet, l *specLimits) {
	l.size, l.expanded = config.DefaultMaxFileSize, config.DefaultMaxExpandedSize
	fs.Var(&l.size, "max-spec-size", "largest spec file read, a `SIZE` such as 4M")
	fs.Var(&l.expanded, "max-spec-expanded", "largest a spec file may grow once its YAML aliases and merge keys are expanded, a `SIZE` such as 32M")
}

func (l specLimits) options() []config.Option {
	if l.size == 0 { // flags not registered: the defaults
		return nil
	}
	return []config.Option{config.WithMaxFileSize(int64(l.size)), config.WithMaxExpandedSize(int64(l.expanded))}
}

// loadSpecs reads the spec files once, within the limits, and returns the
// merged spec and the files' text (for the secrets gate).
func loadSpecs(paths []string, l specLimits) (*config.Spec, []byte, error) {
	srcs, err := config.ReadSources(paths, l.options()...)
	if err != nil {
		return nil, nil, err
	}
	spec, err := config.LoadSources(srcs, l.options()...)
	if err != nil {
		return nil, nil, err
	}
	var text bytes.Buffer
	for _, s := range srcs {
		text.Write(s.Data)
	}
	return spec, text.Bytes(), nil
}

var errZeroLimit = errors.New("a limit must be larger than 0")

// sizeValue is a byte count flag written as config.ParseSize reads it.
type sizeValue int64

func (v *sizeValue) String() string { return regfile.Size(int64(*v)) }

func (v *sizeValue) Set(s string) error {
	n, err := config.ParseSize(s)
	if err != nil {
		return err
	}
	if n == 0 {
		return errZeroLimit
	}
	*v = sizeValue(n)
	return nil
}
