// Package update holds the update bundle format, the contract between the
// builder that writes NAME.bundle and the host that applies it: the
// manifest, the DSSE signature over it (checked here with the standard
// library, so the on-host binaries link no Sigstore code), the version
// order, and a streaming reader.
//
// A bundle is, in this order:
//
//	magic      "bulkhead-update\n" (16 bytes)
//	length     uint32, big endian: the size of the envelope (at most MaxEnvelope)
//	envelope   a DSSE envelope (JSON) whose payload is the manifest (JSON)
//	payloads   each payload's stored bytes, in the manifest's order, nothing after
//
// The manifest names each payload's size and SHA-256 both as stored in the
// bundle and once decoded, so a host can check the signature, the versions
// and every payload's stored digest before it writes a byte, then stream
// the payloads where they go while hashing them again. Every read is
// bounded: the envelope by MaxEnvelope, each payload by its signed size
// and by the format's caps.
package update
