package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/bulkhead-dev/bulkhead/builder/build"
)

// secureBootFlags are build's Secure Boot and measured boot flags.
type secureBootFlags struct {
	key, cert, enroll, pcrKey string
}

func addSecureBootFlags(fs *flag.FlagSet, f *secureBootFlags) {
	fs.StringVar(&f.key, "secureboot-key", "", "sign systemd-boot and every UKI for Secure Boot with this db key (PEM; needs boot.uki and --secureboot-cert)")
	fs.StringVar(&f.cert, "secureboot-cert", "", "the db certificate (PEM) of --secureboot-key")
	fs.StringVar(&f.pcrKey, "pcr-key", "", "put .pcrpkey and .pcrsig into every UKI: the PCR 11 policy signed with this RSA key (PEM), as systemd-measure sign does (needs boot.uki; disk.encrypt_data: tpm seals /var to this key)")
	fs.StringVar(&f.enroll, "secureboot-enroll", "", "a directory holding PK.auth, KEK.auth and db.auth (bulkhead secureboot keys): raw-efi puts them in loader/keys/auto/ and systemd-boot enrolls them on a machine in setup mode")
}

// options turns the flags into build options, refusing combinations that
// make no sense whatever the spec says.
func (f *secureBootFlags) options() ([]build.Option, error) {
	var opts []build.Option
	if f.pcrKey != "" {
		opts = append(opts, build.WithPCRKey(f.pcrKey))
	}
	if f.key == "" && f.cert == "" {
		if f.enroll != "" {
			return nil, fmt.Errorf("%w: --secureboot-enroll needs --secureboot-key", errUsage)
		}
		return opts, nil
	}
	if f.key == "" || f.cert == "" {
		return nil, fmt.Errorf("%w: --secureboot-key and --secureboot-cert go together", errUsage)
	}
	opts = append(opts, build.WithSecureBoot(f.key, f.cert))
	if f.enroll != "" {
		opts = append(opts, build.WithSecureBootEnroll(f.enroll))
	}
	return opts, nil
}

// maxKeyFile bounds a certificate verify reads.
const maxKeyFile = 64 << 10

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
