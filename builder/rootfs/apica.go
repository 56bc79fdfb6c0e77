package rootfs

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/bulkhead-dev/bulkhead/builder/config"
	"github.com/bulkhead-dev/bulkhead/internal/hostapi"
	"github.com/bulkhead-dev/bulkhead/internal/regfile"
)

// maxCAFile bounds the operator CA file read from the build machine.
const maxCAFile = 256 << 10

// apiCA bakes the api section's operator CA certificate (and the listen
// address) into the root, after the files section so that nothing can
// replace them: the init serves the host API only to clients this CA
// signed.
func (a *assembler) apiCA() error {
	api := a.spec.API
	if api == nil {
		return nil
	}
	b, err := a.readCA(api.CA, api.CAPos.File)
	if err != nil {
		return config.Errorf(api.CAPos, "api ca %s: %w", api.CA, err)
	}
	a.putBaked(strings.TrimPrefix(hostapi.CAPath, "/"), b)
	if api.Listen != "" {
		a.putBaked(strings.TrimPrefix(hostapi.ListenPath, "/"), []byte(api.Listen+"\n"))
	}
	return nil
}

func (a *assembler) putBaked(p string, b []byte) {
	e := &Entry{Path: p, Kind: KindFile, Mode: 0o644, Size: int64(len(b)),
		ModTime: a.o.epoch, Content: Content{Data: b}, Origin: OriginBulkhead}
	a.fileParents(&Entry{Path: p, Mode: 0o755, ModTime: a.o.epoch, Origin: OriginBulkhead})
	a.t.Put(e)
}

// readCA reads the CA certificate (relative to the spec naming it) and
// returns its certificates re-encoded, refusing anything but CA
// certificates (a private key in the file is refused: it must never reach
// a host).
func (a *assembler) readCA(p, specFile string) ([]byte, error) {
	if !filepath.IsAbs(p) {
		base := a.o.baseDir
		if specFile != "" {
			base = filepath.Dir(specFile)
		}
		p = filepath.Join(base, p)
	}
	b, err := regfile.ReadFile(p, maxCAFile)
	if err != nil {
		return nil, err
	}
	var out []byte
	for len(b) > 0 {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("holds a %s block: only CA certificates may be baked into a host", blk.Type)
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, err
		}
		if !c.IsCA {
			return nil, fmt.Errorf("%q is not a CA certificate", c.Subject.CommonName)
		}
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: blk.Bytes})...)
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM certificate in it")
	}
	return out, nil
}
