package main

import (
	"crypto/rsa"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/bulkhead-dev/bulkhead/builder/config"
	"github.com/bulkhead-dev/bulkhead/builder/rootfs"
	"github.com/bulkhead-dev/bulkhead/builder/secureboot"
	"github.com/bulkhead-dev/bulkhead/builder/uki"
)

// maxKeyFile bounds a key, certificate or .auth file the build reads.
const maxKeyFile = 64 << 10

// secureBootFlags are build's Secure Boot flags.
type secureBootFlags struct {
	key, cert, enroll, pcrKey string
	signer                    *secureboot.Signer // loaded by check
	pcrSigner                 *rsa.PrivateKey    // loaded by check
}

func addSecureBootFlags(fs *flag.FlagSet, f *secureBootFlags) {
	fs.StringVar(&f.key, "secureboot-key", "", "sign systemd-boot and every UKI for Secure Boot with this db key (PEM; needs boot.uki and --secureboot-cert)")
	fs.StringVar(&f.cert, "secureboot-cert", "", "the db certificate (PEM) of --secureboot-key")
	fs.StringVar(&f.pcrKey, "pcr-key", "", "put .pcrpkey and .pcrsig into every UKI: the PCR 11 policy signed with this RSA key (PEM), as systemd-measure sign does (needs boot.uki)")
	fs.StringVar(&f.enroll, "secureboot-enroll", "", "a directory holding PK.auth, KEK.auth and db.auth (bulkhead secureboot keys): raw-efi puts them in loader/keys/auto/ and systemd-boot enrolls them on a machine in setup mode")
}

// check loads the signer and refuses flags that make no sense for spec.
func (f *secureBootFlags) check(spec *config.Spec) error {
	if f.pcrKey != "" {
		if !wantsUKI(spec) {
			return fmt.Errorf("%w: --pcr-key signs the PCR policy of unified kernel images: set boot.uki: true in the spec", errUsage)
		}
		b, err := readSmall(f.pcrKey)
		if err != nil {
			return fmt.Errorf("--pcr-key: %w", err)
		}
		if f.pcrSigner, err = secureboot.ParseRSAKey(b); err != nil {
			return fmt.Errorf("--pcr-key %s: %w", f.pcrKey, err)
		}
	}
	if f.key == "" && f.cert == "" {
		if f.enroll != "" {
			return fmt.Errorf("%w: --secureboot-enroll needs --secureboot-key", errUsage)
		}
		return nil
	}
	if f.key == "" || f.cert == "" {
		return fmt.Errorf("%w: --secureboot-key and --secureboot-cert go together", errUsage)
	}
	if !wantsUKI(spec) {
		return fmt.Errorf("%w: Secure Boot signs unified kernel images: set boot.uki: true in the spec", errUsage)
	}
	key, err := readSmall(f.key)
	if err != nil {
		return fmt.Errorf("--secureboot-key: %w", err)
	}
	cert, err := readSmall(f.cert)
	if err != nil {
		return fmt.Errorf("--secureboot-cert: %w", err)
	}
	if f.signer, err = secureboot.ParseSigner(key, cert); err != nil {
		return fmt.Errorf("--secureboot-key %s: %w", f.key, err)
	}
	return nil
}

// enrollFiles reads PK.auth, KEK.auth and db.auth from --secureboot-enroll
// (nil without the flag).
func (f *secureBootFlags) enrollFiles() (map[string][]byte, error) {
	if f.enroll == "" {
		return nil, nil
	}
	out := map[string][]byte{}
	for _, name := range []string{"PK.auth", "KEK.auth", "db.auth"} {
		b, err := readSmall(filepath.Join(f.enroll, name))
		if err != nil {
			return nil, fmt.Errorf("--secureboot-enroll: %w", err)
		}
		out[name] = b
	}
	return out, nil
}

// sign signs an EFI program when the build has a Secure Boot key.
func (f *secureBootFlags) sign(img []byte, what string) ([]byte, error) {
	if f.signer == nil {
		return img, nil
	}
	b, err := f.signer.Sign(img)
	if err != nil {
		return nil, fmt.Errorf("signing %s: %w", what, err)
	}
	return b, nil
}

func readSmall(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Size() > maxKeyFile {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, maxKeyFile)
	}
	return os.ReadFile(path)
}

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
		in := uki.Input{Stub: stub, Linux: d.kernel, Initrd: initrd, Cmdline: cmdline, OSRel: uki.OSRelease(d.version())}
		var img []byte
		var err error
		if k := d.f.secureBoot.pcrSigner; k != nil {
			img, err = uki.BuildSigned(in, k)
		} else {
			img, err = uki.Build(in)
		}
		if err != nil {
			return nil, err
		}
		return d.f.secureBoot.sign(img, "the UKI")
	}, nil
}

// bootloaderImage is systemd-boot as the ESP carries it: signed when the
// build has a Secure Boot key.
func (d *diskBuild) bootloaderImage() ([]byte, error) {
	if err := d.loadBootloader(); err != nil {
		return nil, err
	}
	return d.f.secureBoot.sign(d.bootloader, "systemd-boot")
}
