// Package disk writes bootable images of a bulkhead host, in pure Go and
// without privileges: the raw-efi disk image (a GPT disk with an ESP holding
// systemd-boot and one Boot Loader Specification entry per installed
// version, two root partitions and a data partition; see the "Disk layout"
// part of the design) and the iso-efi image (an ISO 9660 image whose El Torito
// EFI boot image is a FAT file system holding the same ESP tree for one
// entry).
//
// Images are reproducible: the same input gives the same bytes. Partition
// and disk GUIDs and the FAT volume id derive from a caller's seed, and every
// timestamp go-diskfs would take from the clock is overwritten with a fixed
// one. Raw images are sparse: zero regions are never written.
package disk
