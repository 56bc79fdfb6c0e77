package scan

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/bulkhead-dev/bulkhead/builder/resolve"
	"github.com/bulkhead-dev/bulkhead/builder/rootfs"
)

// kernelConfigFile is where bulkhead's kernel images keep the .config.
const kernelConfigFile = "kernel.config"

// KernelInfo describes the kernel binary bin (a bzImage) from image img
// (nil if unknown): its release, read from the boot header, and the digest
// of the image's kernel.config when it has one.
func KernelInfo(bin *rootfs.Entry, img *resolve.Image) (*Kernel, error) {
	k := &Kernel{}
	if img != nil {
		k.Ref, k.Digest = img.Ref, img.Digest.String()
		d, err := configDigest(img)
		if err != nil {
			return nil, fmt.Errorf("reading kernel config: %w", err)
		}
		k.ConfigDigest = d
	}
	if bin != nil {
		v, err := bzImageVersion(bin)
		if err != nil {
			return nil, fmt.Errorf("reading kernel version: %w", err)
		}
		k.Version = v
	}
	return k, nil
}

func configDigest(img *resolve.Image) (string, error) {
	t := rootfs.New()
	for _, l := range img.Layers {
		if err := rootfs.ApplyLayer(t, "", l); err != nil {
			return "", err
		}
	}
	e := t.Get(kernelConfigFile)
	if e == nil || e.Kind != rootfs.KindFile {
		return "", nil
	}
	rc, err := e.Open()
	if err != nil {
		return "", err
	}
	defer rc.Close()
	h := sha256.New()
	if _, err := io.Copy(h, rc); err != nil {
		return "", err
	}
	return fmt.Sprintf("sha256:%x", h.Sum(nil)), nil
}

// bzImageVersion reads the release from an x86 boot header: "HdrS" at
// 0x202 and, at 0x20e, the offset (from 0x200) of the version string,
// whose first word is the release. "" when bin is no bzImage.
func bzImageVersion(bin *rootfs.Entry) (string, error) {
	rc, err := bin.Open()
	if err != nil {
		return "", err
	}
	defer rc.Close()
	hdr := make([]byte, 0x210)
	if _, err := io.ReadFull(rc, hdr); err != nil {
		return "", nil
	}
	if string(hdr[0x202:0x206]) != "HdrS" {
		return "", nil
	}
	off := int64(binary.LittleEndian.Uint16(hdr[0x20e:])) + 0x200
	if off < 0x210 || off >= bin.Size {
		return "", nil
	}
	if _, err := io.CopyN(io.Discard, rc, off-0x210); err != nil {
		return "", nil
	}
	s := make([]byte, 256)
	n, _ := io.ReadFull(rc, s)
	s = s[:n]
	if i := bytes.IndexByte(s, 0); i >= 0 {
		s = s[:i]
	}
	v, _, _ := bytes.Cut(s, []byte(" "))
	return string(v), nil
}
