package config

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Disk is bulkhead's `disk:` section: the layout of the raw-efi image.
// Sizes are byte counts with an optional binary suffix (K, M, G, or KiB,
// MiB, GiB); empty means the default.
type Disk struct {
	// ESPSize is the EFI system partition (default: twice its files, the
	// boot loader, kernels and initrds, plus 16 MiB, rounded up to 64 MiB,
	// at least 64M, so an update can add its version beside the running one).
	ESPSize string `json:"esp_size,omitempty" yaml:"esp_size,omitempty"`
	// RootSize is each of the two root slots (default: twice the root image,
	// for room to grow, rounded up to 64 MiB, at least 64M).
	RootSize string `json:"root_size,omitempty" yaml:"root_size,omitempty"`
	// DataSize is the data partition mounted on /var (default 32M). The
	// host grows it to the end of a larger disk on boot; give it room for
	// an update's bundle (spooled in /var) when the disk is the image's size.
	DataSize string `json:"data_size,omitempty" yaml:"data_size,omitempty"`
	// EncryptData "tpm" makes the data partition LUKS2 (aes-xts-plain64),
	// its key sealed to the machine's TPM 2.0 under the PCR 11 policy the
	// UKI carries signed (build with --pcr-key; needs boot.uki): only an
	// OS whose UKI is signed by that key opens /var, and an update signed
	// by the same key keeps opening it without re-sealing. The host
	// creates the volume on its first boot; no key is on the disk image.
	EncryptData string `json:"encrypt_data,omitempty" yaml:"encrypt_data,omitempty"`
	// WithoutTPM is what a host with encrypt_data does on a machine
	// without a TPM 2.0: "fail" (default: /var stays a tmpfs, nothing is
	// written to the data partition, the boot is not blessed) or "plain"
	// (an unencrypted ext4 /var, as without encrypt_data).
	WithoutTPM string `json:"without_tpm,omitempty" yaml:"without_tpm,omitempty"`
	// Bootloader is the image holding systemd-boot's EFI binary
	// (default bulkhead/systemd-boot:252).
	Bootloader Ref `json:"bootloader,omitempty" yaml:"bootloader,omitempty"`

	Pos Pos `json:"-" yaml:"-"`
}

// Boot is bulkhead's `boot:` section: boot counting and confirmation.
type Boot struct {
	// Tries is how many times systemd-boot tries a new entry before it
	// falls back to the other slot (default 3).
	Tries int `json:"tries,omitempty" yaml:"tries,omitempty"`
	// Settle is how long containerd and every service must stay up before
	// the running entry is blessed (a Go duration, default 10s).
	Settle string `json:"settle,omitempty" yaml:"settle,omitempty"`
	// Deadline is how long a boot of a new entry has to become healthy
	// before the init marks the entry bad and, when another entry can
	// boot, reboots into it (a Go duration, default 5m).
	Deadline string `json:"deadline,omitempty" yaml:"deadline,omitempty"`
	// Version names the host version in boot entries (default: derived
	// from the root hash).
	Version string `json:"version,omitempty" yaml:"version,omitempty"`
	// UKI makes raw-efi and iso-efi boot each version as one unified
	// kernel image, EFI/Linux/bulkhead-<version>[+N].efi (systemd-stub
	// with the kernel, initrd and command line inside, signed as a whole
	// with --secureboot-key), instead of a kernel, an initrd and an entry
	// file whose command line anyone with the ESP can edit. The image
	// names no root slot (stage 0 boots the slot holding its root hash),
	// so the update bundle carries the same image for either slot.
	UKI bool `json:"uki,omitempty" yaml:"uki,omitempty"`

	Pos Pos `json:"-" yaml:"-"`
}

// Policy is bulkhead's `policy:` section: the gates a build must pass.
type Policy struct {
	// The kernel hardening gate (bulkhead kernel check).
	Kernel *KernelPolicy `json:"kernel,omitempty" yaml:"kernel,omitempty"`
	// The offline vulnerability gate.
	Vulnerabilities *VulnerabilityPolicy `json:"vulnerabilities,omitempty" yaml:"vulnerabilities,omitempty"`
	// The secrets gate.
	Secrets *SecretsPolicy `json:"secrets,omitempty" yaml:"secrets,omitempty"`
	// MaxSize is the largest allowed root tree (same units as Disk sizes).
	MaxSize string `json:"max_size,omitempty" yaml:"max_size,omitempty"`
	// Forbid names classes of files the host must not contain: shells,
	// package-managers, compilers, setuid, setgid, world-writable,
	// vestigial, devices, capabilities, outside-files (files entries read
	// from outside the spec's directory).
	Forbid []string `json:"forbid,omitempty" yaml:"forbid,omitempty"`
	// Limits bound what the build reads (see Limits).
	Limits *Limits `json:"limits,omitempty" yaml:"limits,omitempty"`

	Pos Pos `json:"-" yaml:"-"`
}

// Limits bound what a build reads from its inputs, in the units of Disk
// sizes; empty means the default (DefaultLimits), which a real host never
// reaches.
type Limits struct {
	// File is the largest files[].source read.
	File string `json:"file,omitempty" yaml:"file,omitempty"`
	// Layer is the largest uncompressed layer.
	Layer string `json:"layer,omitempty" yaml:"layer,omitempty"`
	// Image is the largest image: the sum of its uncompressed layers.
	Image string `json:"image,omitempty" yaml:"image,omitempty"`
	// Host is the most uncompressed layer data one host may read.
	Host string `json:"host,omitempty" yaml:"host,omitempty"`
	// Entries is the most files, directories and links the root may
	// hold (a count; K, M suffixes allowed).
	Entries string `json:"entries,omitempty" yaml:"entries,omitempty"`
}

// Sizes are the byte counts of a Limits section.
type Sizes struct {
	File, Layer, Image, Host int64
	Entries                  int64
}

// DefaultLimits are the limits a spec does not set.
var DefaultLimits = Sizes{File: 128 << 20, Layer: 8 << 30, Image: 16 << 30, Host: 32 << 30, Entries: 4 << 20}

// Sizes returns the limits in bytes, defaults filled in. It is safe on a
// nil Policy or Limits; the values were checked when the spec was read.
func (p *Policy) Sizes() Sizes {
	out := DefaultLimits
	if p == nil || p.Limits == nil {
		return out
	}
	for _, f := range []struct {
		s   string
		dst *int64
	}{{p.Limits.File, &out.File}, {p.Limits.Layer, &out.Layer}, {p.Limits.Image, &out.Image}, {p.Limits.Host, &out.Host}, {p.Limits.Entries, &out.Entries}} {
		if n, err := ParseSize(f.s); err == nil && n > 0 {
			*f.dst = n
		}
	}
	return out
}

// KernelPolicy is what `bulkhead kernel check` must find in the kernel.
type KernelPolicy struct {
	// Require lists rule names that must pass.
	Require []string `json:"require,omitempty" yaml:"require,omitempty"`
	// MinScore is the lowest acceptable score, in percent.
	MinScore int `json:"min_score,omitempty" yaml:"min_score,omitempty"`
	// Enforce makes a failed check fail the build (default: report only).
	Enforce bool `json:"enforce,omitempty" yaml:"enforce,omitempty"`
}

// VulnerabilityPolicy is the offline vulnerability gate.
type VulnerabilityPolicy struct {
	// FailOn is the lowest severity that fails the build: low, medium,
	// high, critical (default high).
	FailOn string `json:"fail_on,omitempty" yaml:"fail_on,omitempty"`
	// Allow lists accepted findings.
	Allow []Allowance `json:"allow,omitempty" yaml:"allow,omitempty"`
}

// SecretsPolicy is the secrets gate.
type SecretsPolicy struct {
	// Allow lists accepted findings by fingerprint.
	Allow []Allowance `json:"allow,omitempty" yaml:"allow,omitempty"`
}

// Allowance accepts one finding (a vulnerability id or a secret
// fingerprint) for a reason until an expiry date (YYYY-MM-DD).
type Allowance struct {
	// The vulnerability id (or an alias) or the secret's fingerprint.
	ID string `json:"id" yaml:"id"`
	// Why it is accepted.
	Reason string `json:"reason" yaml:"reason"`
	// The date, YYYY-MM-DD, after which it no longer counts.
	Expires string `json:"expires,omitempty" yaml:"expires,omitempty"`
}

func decodeDisk(d *decoder, n *yaml.Node, s *Spec) {
	var v Disk
	set := d.structure(n, reflect.ValueOf(&v).Elem(), "disk")
	if set == nil {
		return
	}
	v.Pos = d.pos(n)
	for _, k := range []string{"esp_size", "root_size", "data_size"} {
		if vn := set[k]; vn != nil {
			if _, err := ParseSize(vn.Value); err != nil {
				d.errorf(vn, "%s: %v", k, err)
			}
		}
	}
	if vn := set["encrypt_data"]; vn != nil && v.EncryptData != "tpm" {
		d.errorf(vn, "encrypt_data: the one way to encrypt /var is \"tpm\", got %q", v.EncryptData)
	}
	if vn := set["without_tpm"]; vn != nil {
		switch {
		case v.WithoutTPM != "fail" && v.WithoutTPM != "plain":
			d.errorf(vn, "without_tpm: expected fail or plain, got %q", v.WithoutTPM)
		case v.EncryptData == "":
			d.errorf(vn, "without_tpm: only means something with encrypt_data: tpm")
		}
	}
	s.Disk = &v
}

func decodeBoot(d *decoder, n *yaml.Node, s *Spec) {
	var v Boot
	set := d.structure(n, reflect.ValueOf(&v).Elem(), "boot")
	if set == nil {
		return
	}
	v.Pos = d.pos(n)
	if vn := set["tries"]; vn != nil && (v.Tries < 1 || v.Tries > 9) {
		d.errorf(vn, "tries: must be between 1 and 9, got %d", v.Tries)
	}
	if vn := set["settle"]; vn != nil {
		if dur, err := time.ParseDuration(v.Settle); err != nil || dur < 0 {
			d.errorf(vn, "settle: expected a duration such as 10s, got %q", v.Settle)
		}
	}
	if vn := set["deadline"]; vn != nil {
		if dur, err := time.ParseDuration(v.Deadline); err != nil || dur <= 0 {
			d.errorf(vn, "deadline: expected a positive duration such as 5m, got %q", v.Deadline)
		}
	}
	if vn := set["version"]; vn != nil && !validVersion(v.Version) {
		d.errorf(vn, "version: %q may hold only letters, digits and . _ - ~ ^", v.Version)
	}
	s.Boot = &v
}

func decodePolicy(d *decoder, n *yaml.Node, s *Spec) {
	var v Policy
	set := d.structure(n, reflect.ValueOf(&v).Elem(), "policy")
	if set == nil {
		return
	}
	v.Pos = d.pos(n)
	if vn := set["max_size"]; vn != nil {
		if _, err := ParseSize(vn.Value); err != nil {
			d.errorf(vn, "max_size: %v", err)
		}
	}
	d.checkLimits(set["limits"])
	d.checkPolicyValues(&v, set)
	s.Policy = &v
}

// Forbids reports whether the policy forbids class (policy.forbid); it is
// safe on a nil Policy.
func (p *Policy) Forbids(class string) bool {
	return p != nil && slices.Contains(p.Forbid, class)
}

// checkLimits reports a limit that is not a positive size.
func (d *decoder) checkLimits(n *yaml.Node) {
	n = resolve(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return
	}
	for _, p := range d.pairs(n, 0) {
		v := resolve(p.value)
		if v.Kind != yaml.ScalarNode || isNull(v) {
			continue
		}
		if size, err := ParseSize(v.Value); err != nil {
			d.errorf(v, "limits.%s: %v", p.key.Value, err)
		} else if size == 0 {
			d.errorf(v, "limits.%s: a limit must be larger than 0", p.key.Value)
		}
	}
}

// mergeLast makes a later file's section replace an earlier one's.
func mergeLast[T any](field func(*Spec) **T) func(dst, src *Spec) {
	return func(dst, src *Spec) {
		if v := *field(src); v != nil {
			*field(dst) = v
		}
	}
}

func validVersion(v string) bool {
	if v == "" {
		return false
	}
	for _, r := range v {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._-~^", r)
		if !ok {
			return false
		}
	}
	return true
}

// ParseSize reads a byte count such as 512M, 1GiB or 1048576.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"T", 1 << 40}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSuffix(t, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(t), 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("expected a size such as 512M or 2G, got %q", s)
	}
	return n * mult, nil
}
