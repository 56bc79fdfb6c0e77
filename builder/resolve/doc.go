// Package resolve turns image references from a host spec into images pinned
// by digest, with their config and uncompressed layers in a local content
// store.
//
// A reference is a registry reference, expanded Docker-style (redis ->
// docker.io/library/redis:latest), with a tag or an @sha256 digest, or a local
// OCI image layout written as oci:PATH[:tag|@sha256:...]. A lock file pins each
// reference to a digest; the Resolver honours it, and can insist on it.
//
// The Store is an OCI image layout on disk: it caches pulled images and holds
// locally built ones. Every blob read from it is checked against its digest,
// and it keeps each layer's uncompressed tar next to the layout so later
// stages can read file contents by offset without holding layers in memory.
package resolve
