package output

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"time"

	"github.com/bulkhead-dev/bulkhead/builder/rootfs"
)

// xattrPAXPrefix is the PAX record prefix for extended attributes.
const xattrPAXPrefix = "SCHILY.xattr."

// WriteTar writes t to w as a tar archive in walk order, deterministically:
// numeric owners without names, modification times from the entries,
// extended attributes as PAX records. The first member of a hard-linked
// file carries the data and the others are TypeLink members naming it.
// Sockets, which tar cannot hold, are left out.
func WriteTar(ctx context.Context, w io.Writer, t *rootfs.Tree) error {
	ms, err := plan(ctx, t)
	if err != nil {
		return fmt.Errorf("writing tar: %w", err)
	}
	b := newBlobs()
	defer b.Close()
	tw := tar.NewWriter(w)
	for _, m := range ms {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("writing tar: %w", err)
		}
		if m.kind == rootfs.KindSocket {
			continue
		}
		if err := writeTarMember(ctx, tw, b, m); err != nil {
			return fmt.Errorf("writing tar: %s: %w", displayPath(m.path), err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("writing tar: %w", err)
	}
	return nil
}

func writeTarMember(ctx context.Context, tw *tar.Writer, b *blobs, m member) error {
	hdr, err := tarHeader(m)
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if hdr.Typeflag != tar.TypeReg || hdr.Size == 0 {
		return nil
	}
	c, err := newContent(ctx, b, m.e)
	if err != nil {
		return err
	}
	_, err = io.Copy(tw, c.Reader())
	return err
}

func tarHeader(m member) (*tar.Header, error) {
	e := m.e
	hdr := &tar.Header{
		Name:    tarName(m),
		Mode:    int64(e.Mode & 0o7777),
		Uid:     e.UID,
		Gid:     e.GID,
		ModTime: time.Unix(e.ModTime, 0),
	}
	if len(e.Xattrs) > 0 {
		hdr.Format = tar.FormatPAX
		hdr.PAXRecords = map[string]string{}
		for k, v := range e.Xattrs { // archive/tar writes records sorted
			hdr.PAXRecords[xattrPAXPrefix+k] = v
		}
	}
	switch m.kind {
	case rootfs.KindFile:
		hdr.Typeflag, hdr.Size = tar.TypeReg, e.Size
		if m.first != m.path {
			hdr.Typeflag, hdr.Size, hdr.Linkname = tar.TypeLink, 0, m.first
		}
	case rootfs.KindDir:
		hdr.Typeflag = tar.TypeDir
	case rootfs.KindSymlink:
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, e.Link
	case rootfs.KindCharDev, rootfs.KindBlockDev:
		hdr.Typeflag = tar.TypeChar
		if m.kind == rootfs.KindBlockDev {
			hdr.Typeflag = tar.TypeBlock
		}
		hdr.Devmajor, hdr.Devminor = int64(e.Major), int64(e.Minor)
	case rootfs.KindFIFO:
		hdr.Typeflag = tar.TypeFifo
	default:
		return nil, fmt.Errorf("unknown entry kind %d", m.kind)
	}
	return hdr, nil
}

// tarName is m's member name: directories end in "/", the root is "./".
func tarName(m member) string {
	switch {
	case m.path == "":
		return "./"
	case m.kind == rootfs.KindDir:
		return m.path + "/"
	}
	return m.path
}
