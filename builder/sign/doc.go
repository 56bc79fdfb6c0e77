// Package sign holds bulkhead's signing keys and signs and verifies what a
// build produces: SHA256SUMS over the artifacts, a Sigstore bundle per
// artifact, and an in-toto statement with an SLSA provenance predicate in a
// DSSE envelope. It also signs images, as cosign does, so a trust policy can
// require their signatures.
//
// Signing is offline and key-based (ECDSA P-256 or Ed25519); bundles are
// made and checked with sigstore-go. Signatures are deterministic, so the
// same build signed with the same key gives the same bytes. Private key
// material never appears in an error.
package sign
