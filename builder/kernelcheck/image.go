package kernelcheck

import (
	"errors"
	"fmt"
	"io"

	"github.com/bulkhead-dev/bulkhead/builder/resolve"
	"github.com/bulkhead-dev/bulkhead/builder/rootfs"
)

// KernelConfigFile is the file of a bulkhead kernel image that holds the
// kernel's .config (LinuxKit's layout).
const KernelConfigFile = "kernel.config"

// maxConfig bounds a kernel.config file.
const maxConfig = 16 << 20

// ImageConfig returns the kernel config of a resolved kernel image: its
// kernel.config file, or else the config embedded in its kernel binary
// (binary is the spec's kernel.binary; "" means "kernel").
func ImageConfig(img *resolve.Image, binary string) ([]byte, Source, error) {
	data, _, src, err := imageConfig(img, binary)
	return data, src, err
}

// ImageKconfig is ImageConfig's config, parsed.
func ImageKconfig(img *resolve.Image, binary string) (Kconfig, Source, error) {
	_, k, src, err := imageConfig(img, binary)
	return k, src, err
}

// imageConfig finds the kernel config of img as ImageConfig says and
// returns it as it is and parsed.
func imageConfig(img *resolve.Image, binary string) ([]byte, Kconfig, Source, error) {
	t := rootfs.New()
	for _, l := range img.Layers {
		if err := rootfs.ApplyLayer(t, "", l); err != nil {
			return nil, nil, "", fmt.Errorf("reading kernel image %s: %w", img.Name, err)
		}
	}
	what, src := KernelConfigFile, SourceConfig
	e := t.Get(KernelConfigFile)
	if e == nil || e.Kind != rootfs.KindFile {
		if binary == "" {
			binary = "kernel"
		}
		p, _ := rootfs.Clean(binary)
		if e = t.Get(p); e == nil || e.Kind != rootfs.KindFile {
			return nil, nil, "", fmt.Errorf("reading kernel image %s: no %s and no %s", img.Name, KernelConfigFile, binary)
		}
		what, src = binary, ""
	}
	limit := int64(maxConfig)
	if src == "" {
		limit = maxKernel
	}
	data, err := readEntry(e, limit)
	if err == nil && src == "" {
		data, src, err = ReadConfig(data)
	}
	var k Kconfig
	if err == nil {
		k, err = ParseKconfig(data)
	}
	if err != nil {
		return nil, nil, "", fmt.Errorf("reading kernel image %s: %s: %w", img.Name, what, err)
	}
	return data, k, src, nil
}

func readEntry(e *rootfs.Entry, limit int64) ([]byte, error) {
	if e.Size > limit {
		return nil, errors.New("too large")
	}
	rc, err := e.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, limit))
}
