// Package output writes a root tree (builder/rootfs) into the artifacts a
// host boots from: a newc cpio initramfs (zstd, gzip or uncompressed, with an
// optional early-microcode cpio in front), a tar archive, and LinuxKit's
// kernel+initrd file set. Every writer streams entry by entry, never holding
// the archive or a whole file in memory, and produces the same bytes for the
// same tree. Output files are written atomically: a failed build leaves
// nothing behind.
package output
