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
	data, src, what, err := configData(t, binary)
	var k Kconfig
	if err == nil {
		k, err = ParseKconfig(data)
	}
	if err != nil {
		if what != "" {
			err = fmt.Errorf("%s: %w", what, err)
		}
		return nil, nil, "", fmt.Errorf("reading kernel image %s: %w", img.Name, err)
	}
	return data, k, src, nil
}

// configData reads the config out of the kernel image's tree t: its
// kernel.config file, else the config embedded in binary. what names the
// file it read ("" when there was none).
func configData(t *rootfs.Tree, binary string) (data []byte, src Source, what string, err error) {
	if e := t.Get(KernelConfigFile); e != nil && e.Kind == rootfs.KindFile {
		data, err := readEntry(e, maxConfig)
		return data, SourceConfig, KernelConfigFile, err
	}
	if binary == "" {
		binary = "kernel"
	}
	p, _ := rootfs.Clean(binary)
	e := t.Get(p)
	if e == nil || e.Kind != rootfs.KindFile {
		return nil, "", "", fmt.Errorf("no %s and no %s", KernelConfigFile, binary)
	}
	if data, err = readEntry(e, maxKernel); err != nil {
		return nil, "", binary, err
	}
	data, src, err = ReadConfig(data)
	return data, src, binary, err
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
