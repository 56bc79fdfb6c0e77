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
	t := rootfs.New()
	for _, l := range img.Layers {
		if err := rootfs.ApplyLayer(t, "", l); err != nil {
			return nil, "", fmt.Errorf("reading kernel image %s: %w", img.Name, err)
		}
	}
	if e := t.Get(KernelConfigFile); e != nil && e.Kind == rootfs.KindFile {
		data, err := readEntry(e, maxConfig)
		if err != nil {
			return nil, "", fmt.Errorf("reading kernel image %s: %s: %w", img.Name, KernelConfigFile, err)
		}
		if _, err := ParseKconfig(data); err != nil {
			return nil, "", fmt.Errorf("reading kernel image %s: %s: %w", img.Name, KernelConfigFile, err)
		}
		return data, SourceConfig, nil
	}
	if binary == "" {
		binary = "kernel"
	}
	p, _ := rootfs.Clean(binary)
	e := t.Get(p)
	if e == nil || e.Kind != rootfs.KindFile {
		return nil, "", fmt.Errorf("reading kernel image %s: no %s and no %s", img.Name, KernelConfigFile, binary)
	}
	data, err := readEntry(e, maxKernel)
	if err != nil {
		return nil, "", fmt.Errorf("reading kernel image %s: %s: %w", img.Name, binary, err)
	}
	cfg, src, err := ReadConfig(data)
	if err != nil {
		return nil, "", fmt.Errorf("reading kernel image %s: %s: %w", img.Name, binary, err)
	}
	return cfg, src, nil
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
