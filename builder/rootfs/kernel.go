package rootfs

import (
	"fmt"
	"os"

	"github.com/bulkhead-dev/bulkhead/builder/config"
)

// LinuxKit's kernel image convention.
const (
	defaultKernelBinary = "kernel"     // the bzImage
	defaultKernelTar    = "kernel.tar" // modules, extracted into the root
)

// kernel takes the kernel binary and the optional microcode out of the
// kernel image and extracts the modules tar into the root.
func (a *assembler) kernel() error {
	k := a.spec.Kernel
	if k.Image == "" {
		return nil
	}
	kt, _, err := a.flatten(k.Image, k.Pos, fixNone)
	if err != nil {
		return err
	}
	_, origin, _ := a.image(k.Image, k.Pos)
	bin := k.Binary
	if bin == "" {
		bin = defaultKernelBinary
	}
	if a.host.Kernel, err = imageFile(kt, bin); err != nil {
		return config.Errorf(k.Pos, "kernel image %q: %w", k.Image, err)
	}
	if k.UCode != "" {
		if a.host.Ucode, err = imageFile(kt, k.UCode); err != nil {
			return config.Errorf(k.Pos, "kernel image %q: ucode: %w", k.Image, err)
		}
	}
	name := kernelTarName(k)
	if name == "" {
		return nil
	}
	tf, err := imageFile(kt, name)
	if err != nil {
		return config.Errorf(k.Pos, "kernel image %q: %w", k.Image, err)
	}
	if err := a.extractNested(tf, origin); err != nil {
		return config.Errorf(k.Pos, "kernel image %q: %w", k.Image, err)
	}
	return nil
}

// kernelTarName is kernel.tar, or what the spec names instead; "" when the
// spec turns it off ("none" or "").
func kernelTarName(k config.Kernel) string {
	if k.Tar == nil {
		return defaultKernelTar
	}
	if *k.Tar == "none" {
		return ""
	}
	return *k.Tar
}

// imageFile returns the regular file (or hard link to one) at name in a
// flattened image.
func imageFile(t *Tree, name string) (*Entry, error) {
	p, ok := Clean(name)
	if !ok || p == "" {
		return nil, fmt.Errorf("invalid file name %q", name)
	}
	e := t.entries[p]
	if e == nil || (e.Kind != KindFile && e.Kind != KindHardlink) {
		return nil, fmt.Errorf("no file %q", name)
	}
	c := *e
	c.Kind = KindFile
	c.Link = ""
	return &c, nil
}

// extractNested applies a tar stored as a file in a layer (kernel.tar) to
// the root. Its entries point into the same layer file: their offsets are
// the nested tar's offset plus their offset inside it.
func (a *assembler) extractNested(tf *Entry, origin string) error {
	if tf.Content.Blob == "" {
		return fmt.Errorf("%s is not stored in a layer", tf.Path)
	}
	f, err := os.Open(tf.Content.Blob)
	if err != nil {
		return fmt.Errorf("extracting %s: %w", tf.Path, err)
	}
	defer f.Close()
	o := *a.o
	o.origin = origin
	src := tarSource{blob: tf.Content.Blob, r: f, base: tf.Content.Offset, size: tf.Size, name: tf.Path}
	return applyTar(a.t, "", src, &o)
}
