// Package bootparam names the kernel command-line parameters and initrd
// paths that the builder writes and the init reads, in one place so the
// two cannot drift apart. (The verity parameter is internal/verity's
// CmdlineKey.)
package bootparam

import "strings"

const (
	// Data names the data partition mounted on /var:
	// bulkhead.data=PARTUUID=<guid>.
	Data = "bulkhead.data"
	// DataEncrypt says how the data partition is encrypted: "tpm" (LUKS2,
	// its key sealed to the TPM under the UKI's signed PCR 11 policy).
	DataEncrypt = "bulkhead.data.encrypt"
	// WithoutTPM is what an encrypted data partition does without a TPM:
	// "fail" (the default: /var is a tmpfs) or "plain" (plain ext4).
	WithoutTPM = "bulkhead.data.without_tpm"
	// StubExtra is where systemd-stub puts the UKI's .pcrsig and .pcrpkey
	// in the initramfs, and PCRDir where stage 0 keeps them for stage 1
	// (on the /run tmpfs it moves into the new root).
	StubExtra = "/.extra"
	PCRDir    = "/run/bulkhead/pcr"
	// RootSlotFile is where stage 0 writes the PARTUUID of the root slot it
	// picked by root hash (a UKI names no slot), so stage 1 need not look
	// for it again.
	RootSlotFile = "/run/bulkhead/root-slot"
	// PCRSignature and PCRPublicKey are their file names in both places.
	PCRSignature = "tpm2-pcr-signature.json"
	PCRPublicKey = "tpm2-pcr-public-key.pem"
	// Settle is how long containerd and every service must stay up before
	// the running boot entry is blessed (a Go duration).
	Settle = "bulkhead.settle"
	// Deadline is how long a boot from a counted entry has to become
	// healthy (settled) before the entry is marked bad and, when another
	// entry can boot, the machine reboots into it (a Go duration).
	Deadline = "bulkhead.deadline"
	// Watchdog is the watchdog timeout the init arms (a Go duration,
	// default 30s).
	Watchdog = "bulkhead.watchdog"
	// Fault injects a failure for tests of the fallback path: "panic"
	// (stage 1 exits, so the kernel panics) or "hang" (stage 1 stops,
	// and stops petting the watchdog). Never set it on a real host.
	Fault = "bulkhead.fault"
	// RootImage names the root image file inside the initramfs:
	// bulkhead.rootimg=/bulkhead/root.img.
	RootImage = "bulkhead.rootimg"
	// RootImageFile is where the initrd of iso-efi and kernel+initrd
	// carries the root image, as a path inside the initramfs without the
	// leading slash.
	RootImageFile = "bulkhead/root.img"
	// TypeRoot is the GPT type GUID of the A/B root slots (the
	// Discoverable Partitions Specification's x86-64 root), TypeData the
	// one of the data partition (its /var): a boot whose command line
	// names no root partition (a unified kernel image, the same for
	// either slot) finds them by type.
	TypeRoot = "4f68bce3-e8cd-4db1-96e7-fbcaf984b709"
	TypeData = "4d21b016-b534-45c2-a9fb-5c16e091fd2d"
)

// Value returns the value of the last key=value on the kernel command
// line cmdline ("" when key is not there).
func Value(cmdline, key string) string {
	v := ""
	for _, f := range strings.Fields(cmdline) {
		if k, val, ok := strings.Cut(f, "="); ok && k == key {
			v = val
		}
	}
	return v
}
