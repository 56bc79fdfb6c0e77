package update

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// maxKeysFile bounds the keys file a host reads.
const maxKeysFile = 256 << 10

// ReadKeys reads the keys a host accepts bundles from: KeysPath under the
// root directory root ("/" on a host).
func ReadKeys(root string) ([]*PublicKey, error) {
	p := filepath.Join(root, KeysPath)
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("reading update keys: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxKeysFile+1))
	if err != nil {
		return nil, fmt.Errorf("reading update keys: %w", err)
	}
	if len(b) > maxKeysFile {
		return nil, fmt.Errorf("reading update keys: %s is larger than %d bytes", p, maxKeysFile)
	}
	keys, err := ParsePublicKeys(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return keys, nil
}
