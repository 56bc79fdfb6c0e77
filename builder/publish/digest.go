package publish

import (
	"encoding/json"
	"fmt"
	"github.com/bulkhead-dev/bulkhead/internal/regfile"

	"github.com/bulkhead-dev/bulkhead/internal/update"
)

func fileDigest(path string) (string, error) {
	sum, _, err := regfile.SHA256(path)
	if err != nil {
		return "", err
	}
	return "sha256:" + sum, nil
}

func encodeEnvelope(env *update.Envelope) ([]byte, error) {
	b, err := json.Marshal(env)
	if err != nil {
		return nil, fmt.Errorf("encoding signed manifest: %w", err)
	}
	return b, nil
}
