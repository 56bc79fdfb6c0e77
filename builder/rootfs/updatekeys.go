package rootfs

import (
	"bytes"
	"fmt"
	"path/filepath"

	"github.com/bulkhead-dev/bulkhead/internal/regfile"
	"github.com/bulkhead-dev/bulkhead/internal/update"
)

// updateKeys bakes the public keys of the spec's update section into the
// root at update.KeysPath (one PEM file, mode 0644), after everything
// else: the host accepts bundles signed by these keys only, and the files
// section cannot replace them.
func (a *assembler) updateKeys() error {
	u := a.spec.Update
	if u == nil || len(u.Keys) == 0 {
		return nil
	}
	var all bytes.Buffer
	for i, k := range u.Keys {
		pos := u.Pos
		if i < len(u.KeysPos) {
			pos = u.KeysPos[i]
		}
		b, err := a.readKey(k, pos.File)
		if err != nil {
			return fmt.Errorf("%s: update key %s: %w", pos, k, err)
		}
		all.Write(b)
	}
	e := &Entry{
		Path: update.KeysPath, Kind: KindFile, Mode: 0o644, Size: int64(all.Len()),
		ModTime: a.o.epoch, Content: Content{Data: all.Bytes()}, Origin: OriginBulkhead,
	}
	a.fileParents(&Entry{Path: e.Path, Mode: 0o755, ModTime: a.o.epoch, Origin: OriginBulkhead})
	a.t.Put(e)
	if u.Credentials != "" {
		line := []byte(u.Credentials + "\n")
		a.t.Put(&Entry{Path: update.CredentialsPathFile, Kind: KindFile, Mode: 0o644, Size: int64(len(line)),
			ModTime: a.o.epoch, Content: Content{Data: line}, Origin: OriginBulkhead})
	}
	return nil
}

// maxKeyFile bounds a public key file: a few keys are a few kilobytes.
const maxKeyFile = 1 << 20

// readKey reads one public key file (relative to the spec that names it)
// and returns it as a canonical PEM block.
func (a *assembler) readKey(p, specFile string) ([]byte, error) {
	if !filepath.IsAbs(p) {
		base := a.o.baseDir
		if specFile != "" {
			base = filepath.Dir(specFile)
		}
		p = filepath.Join(base, p)
	}
	b, err := regfile.ReadFile(p, maxKeyFile)
	if err != nil {
		return nil, err
	}
	keys, err := update.ParsePublicKeys(b)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	for _, k := range keys {
		out.Write(k.PEM())
	}
	return out.Bytes(), nil
}
