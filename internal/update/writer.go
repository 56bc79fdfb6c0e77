package update

import (
	"encoding/binary"
	"fmt"
	"io"
)

// WriteHeader writes a bundle's magic, the envelope's length and the
// envelope (the JSON of a DSSE envelope over the manifest); the payloads'
// stored bytes follow, in the manifest's order.
func WriteHeader(w io.Writer, envelope []byte) error {
	if len(envelope) == 0 || len(envelope) > MaxEnvelope {
		return fmt.Errorf("writing bundle header: envelope of %d bytes, want 1 to %d", len(envelope), MaxEnvelope)
	}
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(envelope)))
	for _, b := range [][]byte{Magic, n[:], envelope} {
		if _, err := w.Write(b); err != nil {
			return fmt.Errorf("writing bundle header: %w", err)
		}
	}
	return nil
}
