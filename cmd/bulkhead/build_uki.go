package main

import (
	"fmt"

	"github.com/bulkhead-dev/bulkhead/builder/config"
	"github.com/bulkhead-dev/bulkhead/builder/rootfs"
	"github.com/bulkhead-dev/bulkhead/builder/uki"
)

// The UKI stub (boot.uki).
const (
	// defaultStub is the image holding systemd-stub (images/systemd-stub).
	defaultStub = "bulkhead/systemd-stub:252"
	// stubPath is the stub inside that image.
	stubPath = "usr/lib/systemd/boot/efi/linuxx64.efi.stub"
)

// wantsUKI reports whether the spec boots its versions as UKIs.
func wantsUKI(spec *config.Spec) bool { return spec.Boot != nil && spec.Boot.UKI }

// appendDiskRefs adds the images a disk format needs: the boot loader,
// and the stub when the spec asks for UKIs.
func appendDiskRefs(refs []specRef, spec *config.Spec) []specRef {
	refs = appendRef(refs, bootloaderRef(spec))
	if wantsUKI(spec) {
		refs = appendRef(refs, specRef{ref: defaultStub, pos: spec.Boot.Pos})
	}
	return refs
}

// loadStub reads systemd-stub from its image.
func (d *diskBuild) loadStub() ([]byte, error) {
	img := d.images[defaultStub]
	if img == nil {
		return nil, fmt.Errorf("stub image %s was not resolved", defaultStub)
	}
	t, err := rootfs.Flatten(img, rootfs.WithEpoch(d.epoch))
	if err != nil {
		return nil, err
	}
	b, err := t.ReadFile(stubPath)
	if err != nil {
		return nil, fmt.Errorf("stub image %s: %w", defaultStub, err)
	}
	return b, nil
}

// ukiBuilder returns what makes the version's UKI for a command line
// (disk.Entry.UKI), signed when the build has a Secure Boot key; nil
// when the spec boots type #1 entries.
func (d *diskBuild) ukiBuilder(initrd []byte) (func(cmdline string) ([]byte, error), error) {
	if !wantsUKI(d.spec) {
		return nil, nil
	}
	stub, err := d.loadStub()
	if err != nil {
		return nil, err
	}
	return func(cmdline string) ([]byte, error) {
		return uki.Build(uki.Input{Stub: stub, Linux: d.kernel, Initrd: initrd, Cmdline: cmdline, OSRel: uki.OSRelease(d.version())})
	}, nil
}
