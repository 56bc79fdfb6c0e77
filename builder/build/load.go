package build

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/bulkhead-dev/bulkhead/builder/config"
)

// Loaded is the merged spec and the text of its files (for the secrets
// gate).
type Loaded struct {
	Spec *config.Spec
	Text []byte
}

// DefaultName is the output name of a build of spec: its file name
// without .yml or .yaml.
func DefaultName(spec string) string {
	return strings.TrimSuffix(strings.TrimSuffix(filepath.Base(spec), ".yml"), ".yaml")
}

// Load reads the spec files once, within the spec options' limits, and
// merges them. The spec's warnings go to the Progress.
func (b *Builder) Load() (*Loaded, error) {
	srcs, err := config.ReadSources(b.specs, b.o.specOpts...)
	if err != nil {
		return nil, err
	}
	spec, err := config.LoadSources(srcs, b.o.specOpts...)
	if err != nil {
		return nil, err
	}
	var text bytes.Buffer
	for _, s := range srcs {
		text.Write(s.Data)
	}
	for _, w := range spec.Warnings {
		b.warn("load", w.Pos, "%s", w.Msg)
	}
	return &Loaded{Spec: spec, Text: text.Bytes()}, nil
}

// Check runs the checks that need the spec and the options but no image:
// what the formats asked for need of the spec. Build runs it before
// resolving anything.
func (b *Builder) Check(l *Loaded) error {
	if err := b.checkSecureBoot(l.Spec); err != nil {
		return err
	}
	if slices.Contains(b.o.formats, "update") && b.o.key == nil && b.o.keyRef == "" {
		return errors.New("an update bundle must be signed: give a signing key")
	}
	return b.checkSpec(l)
}

// checkSpec is Check but for the options: what the formats need of the
// spec alone, and what makes a well-formed spec unable to boot or build
// (config.CheckHost: no init, a missing files source).
func (b *Builder) checkSpec(l *Loaded) error {
	home, _ := os.UserHomeDir()
	if err := config.CheckHost(l.Spec, home); err != nil {
		return err
	}
	if !slices.Contains(b.o.formats, "update") {
		return nil
	}
	spec := l.Spec
	if spec.Boot == nil || spec.Boot.Version == "" {
		return errors.New("an update bundle needs boot.version in the spec: hosts order versions to refuse downgrades")
	}
	_, err := b.updateExpiry(spec)
	return err
}

// Ref is an image reference of a spec and where it is written.
type Ref struct {
	Ref string
	Pos config.Pos
}

// Refs lists the spec's image references in spec order, each once, at its
// first position; with the disk section, its boot loader; with boot.uki,
// the UKI stub.
func Refs(s *config.Spec) []Ref {
	var refs []Ref
	seen := map[string]bool{}
	add := func(ref string, pos config.Pos) {
		if ref == "" || seen[ref] {
			return
		}
		seen[ref] = true
		refs = append(refs, Ref{ref, pos})
	}
	add(s.Kernel.Image, s.Kernel.Pos)
	for _, r := range s.Init {
		add(r.Ref, r.Pos)
	}
	for _, list := range [][]*config.Image{s.Onboot, s.Onshutdown, s.Services} {
		for _, img := range list {
			add(img.Image, img.ImagePos)
		}
	}
	for _, v := range s.Volumes {
		add(v.Image, v.ImagePos)
	}
	if s.Disk != nil {
		b := BootloaderRef(s)
		add(b.Ref, b.Pos)
	}
	if wantsUKI(s) {
		add(DefaultStub, s.Boot.Pos)
	}
	return refs
}

// BuildRefs are the references a build of spec in formats resolves: Refs,
// and the boot loader (and with boot.uki the stub) when a disk format
// needs one.
func BuildRefs(spec *config.Spec, formats []string) []Ref {
	refs := Refs(spec)
	if slices.ContainsFunc(formats, isDiskFormat) {
		refs = AppendRef(refs, BootloaderRef(spec))
		if wantsUKI(spec) {
			refs = AppendRef(refs, Ref{DefaultStub, spec.Boot.Pos})
		}
	}
	return refs
}

// AppendRef adds r to refs unless it is there already.
func AppendRef(refs []Ref, r Ref) []Ref {
	for _, have := range refs {
		if have.Ref == r.Ref {
			return refs
		}
	}
	return append(refs, r)
}

// RefStrings are the references of refs.
func RefStrings(refs []Ref) []string {
	out := make([]string, len(refs))
	for i, r := range refs {
		out[i] = r.Ref
	}
	return out
}
