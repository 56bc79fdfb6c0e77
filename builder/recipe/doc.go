// Package recipe builds bulkhead's component images from source, without
// Docker, the way ko builds Go programs into images.
//
// A recipe is images/<name>/image.yml (see images/README.md). It names Go
// programs (packages of this module, or module@version), files taken from
// Debian packages fetched with apt-get download, a kernel taken from a Debian
// kernel package with only the modules the host needs, and static files. Build
// compiles and fetches what the recipe names, caches the results by their
// inputs, and assembles a one-layer OCI image whose bytes depend only on those
// inputs: sorted tar entries, fixed owners, modes and times, a fixed gzip
// header, and a config created at SOURCE_DATE_EPOCH. The manifest's
// annotations record what went in (Go version, module versions, Debian
// package versions and sha256).
package recipe
