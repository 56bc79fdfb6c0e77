package build

import (
	"crypto/rsa"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/bulkhead-dev/bulkhead/builder/config"
	"github.com/bulkhead-dev/bulkhead/builder/rootfs"
	"github.com/bulkhead-dev/bulkhead/builder/secureboot"
	"github.com/bulkhead-dev/bulkhead/builder/uki"
)

// The UKI stub (boot.uki).
const (
	// DefaultStub is the image holding systemd-stub (images/systemd-stub).
	DefaultStub = "bulkhead/systemd-stub:252"
	// stubPath is the stub inside that image.
	stubPath = "usr/lib/systemd/boot/efi/linuxx64.efi.stub"
	// maxKeyFile bounds a key, certificate or .auth file the build reads.
	maxKeyFile = 64 << 10
)

// enrollFiles are the signed EFI signature lists WithSecureBootEnroll's
// directory holds, in the order systemd-boot enrolls them.
var enrollFiles = [...]string{"PK.auth", "KEK.auth", "db.auth"}

// WithSecureBoot signs systemd-boot and every UKI for Secure Boot with the
// db key and its certificate (PEM files); the spec must say boot.uki.
func WithSecureBoot(keyPath, certPath string) Option {
	return func(o *options) error {
		if keyPath == "" || certPath == "" {
			return errors.New("a Secure Boot key and its certificate go together")
		}
		o.sbKey, o.sbCert = keyPath, certPath
		return nil
	}
}

// WithSecureBootEnroll is a directory holding PK.auth, KEK.auth and
// db.auth (bulkhead secureboot keys): raw-efi puts them in
// loader/keys/auto/, and systemd-boot enrolls them on a machine in setup
// mode. It needs WithSecureBoot.
func WithSecureBootEnroll(dir string) Option {
	return func(o *options) error { o.sbEnroll = dir; return nil }
}

// WithPCRKey puts .pcrpkey and .pcrsig into every UKI: the PCR 11 policy
// signed with this RSA key (a PEM file), as systemd-measure sign does.
func WithPCRKey(path string) Option { return func(o *options) error { o.pcrKey = path; return nil } }

// wantsUKI reports whether the spec boots its versions as UKIs.
func wantsUKI(spec *config.Spec) bool { return spec.Boot != nil && spec.Boot.UKI }

// checkSecureBoot refuses Secure Boot options the spec cannot use and
// loads the keys.
func (b *Builder) checkSecureBoot(spec *config.Spec) error {
	o := &b.o
	if o.sbEnroll != "" && o.sbKey == "" {
		return errors.New("enrolling Secure Boot keys needs a Secure Boot key to sign with")
	}
	if (o.sbKey != "" || o.pcrKey != "") && !wantsUKI(spec) {
		return errors.New("Secure Boot signing and PCR policies are for unified kernel images: set boot.uki: true in the spec")
	}
	if d := spec.Disk; d != nil && d.EncryptData != "" && o.pcrKey == "" && o.pcrSigner == nil {
		return fmt.Errorf("%s: disk: encrypt_data: tpm seals /var to the PCR policy the UKI carries signed: build with --pcr-key KEY.pem (an RSA key; every version signed with it opens /var)", d.Pos)
	}
	if o.pcrKey != "" && o.pcrSigner == nil {
		k, err := loadRSAKey(o.pcrKey)
		if err != nil {
			return fmt.Errorf("PCR key: %w", err)
		}
		o.pcrSigner = k
	}
	if o.sbKey != "" && o.sbSigner == nil {
		key, err := readSmall(o.sbKey)
		if err != nil {
			return fmt.Errorf("Secure Boot key: %w", err)
		}
		cert, err := readSmall(o.sbCert)
		if err != nil {
			return fmt.Errorf("Secure Boot certificate: %w", err)
		}
		if o.sbSigner, err = secureboot.ParseSigner(key, cert); err != nil {
			return fmt.Errorf("Secure Boot key %s: %w", o.sbKey, err)
		}
	}
	return nil
}

func loadRSAKey(path string) (*rsa.PrivateKey, error) {
	b, err := readSmall(path)
	if err != nil {
		return nil, err
	}
	k, err := secureboot.ParseRSAKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
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

// enroll reads PK.auth, KEK.auth and db.auth from the enroll directory
// (nil without one).
func (a *artifacts) enroll() (map[string][]byte, error) {
	dir := a.b.o.sbEnroll
	if dir == "" {
		return nil, nil
	}
	out := map[string][]byte{}
	for _, name := range enrollFiles {
		b, err := readSmall(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("Secure Boot keys to enroll: %w", err)
		}
		out[name] = b
	}
	return out, nil
}

// signEFI signs an EFI program when the build has a Secure Boot key.
func (a *artifacts) signEFI(img []byte, what string) ([]byte, error) {
	s := a.b.o.sbSigner
	if s == nil {
		return img, nil
	}
	b, err := s.Sign(img)
	if err != nil {
		return nil, fmt.Errorf("signing %s: %w", what, err)
	}
	return b, nil
}

// loadStub reads systemd-stub from its image.
func (a *artifacts) loadStub() ([]byte, error) {
	img := a.images[DefaultStub]
	if img == nil {
		return nil, fmt.Errorf("stub image %s was not resolved", DefaultStub)
	}
	t, err := rootfs.Flatten(img, rootfs.WithEpoch(a.b.o.epoch))
	if err != nil {
		return nil, err
	}
	b, err := t.ReadFile(stubPath)
	if err != nil {
		return nil, fmt.Errorf("stub image %s: %w", DefaultStub, err)
	}
	return b, nil
}

// ukiBuilder returns what makes the version's UKI from the initrd file
// initrdPath for a command line (disk.Entry.UKI), with the signed PCR
// policy when the build has a PCR key and signed for Secure Boot when it
// has a Secure Boot key; nil when the spec boots type #1 entries.
func (a *artifacts) ukiBuilder(initrdPath string) (func(cmdline string) ([]byte, error), error) {
	if !wantsUKI(a.spec) {
		return nil, nil
	}
	stub, err := a.loadStub()
	if err != nil {
		return nil, err
	}
	// A UKI embeds the kernel and the initrd; it is assembled and signed
	// in memory, once for each initrd and command line.
	return func(cmdline string) ([]byte, error) {
		key := [2]string{initrdPath, cmdline}
		if img, ok := a.ukis[key]; ok {
			return img, nil
		}
		kernel, err := readEntry(a.root.Kernel)
		if err != nil {
			return nil, fmt.Errorf("reading the kernel: %w", err)
		}
		initrd, err := os.ReadFile(initrdPath)
		if err != nil {
			return nil, fmt.Errorf("reading the initrd: %w", err)
		}
		in := uki.Input{Stub: stub, Linux: kernel, Initrd: initrd, Cmdline: cmdline, OSRel: uki.OSRelease(a.root.Version)}
		var img []byte
		if k := a.b.o.pcrSigner; k != nil {
			img, err = uki.BuildSigned(in, k)
		} else {
			img, err = uki.Build(in)
		}
		if err != nil {
			return nil, err
		}
		if img, err = a.signEFI(img, "the UKI"); err != nil {
			return nil, err
		}
		if a.ukis == nil {
			a.ukis = map[[2]string][]byte{}
		}
		a.ukis[key] = img
		return img, nil
	}, nil
}

// bootloaderImage is systemd-boot as the ESP carries it: signed when the
// build has a Secure Boot key.
func (a *artifacts) bootloaderImage() ([]byte, error) {
	if err := a.loadBootloader(); err != nil {
		return nil, err
	}
	return a.signEFI(a.bootloader, "systemd-boot")
}
