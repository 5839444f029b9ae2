package export

import (
	"archive/tar"
	"bufio"
	"context"
	"fmt"
	"io"
	"time"

	"github.com/ocirender/ocirender/index"
)

// TarOptions tune Tar. The zero value works.
type TarOptions struct {
	// Progress, when set, is called now and then with the bytes of file content written.
	Progress func(written int64)
}

// Tar writes the tree as a PAX tar stream to w: every directory present (the root as "./"),
// parents before children, children in bytewise order, hard links after the first name of
// their inode, xattrs as SCHILY.xattr records, mtimes with nanoseconds, numeric owners only.
// The same index and layers always give the same bytes.
func Tar(ctx context.Context, w io.Writer, ix *index.Index, layers Layers, opts TarOptions) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	tw := tar.NewWriter(bw)
	first := make(map[index.InodeID]string)
	buf := make([]byte, 1<<20)
	var written, lastReport int64
	err := ix.Walk(index.Root, func(id index.ID, p string) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		e := ix.Entry(id)
		h := &tar.Header{
			Name:     p,
			Mode:     int64(e.Mode),
			Uid:      int(e.UID),
			Gid:      int(e.GID),
			ModTime:  time.Unix(0, e.Mtime),
			Format:   tar.FormatPAX,
			Devmajor: int64(e.Devmajor),
			Devminor: int64(e.Devminor),
		}
		if len(e.Xattrs) > 0 {
			h.PAXRecords = make(map[string]string, len(e.Xattrs))
			for _, x := range e.Xattrs {
				h.PAXRecords["SCHILY.xattr."+x.Name] = x.Value
			}
		}
		linked := false
		if e.Type != index.Dir && e.Nlink > 1 {
			if target, ok := first[e.Ino]; ok {
				h.Typeflag, h.Linkname, linked = tar.TypeLink, target, true
			} else {
				first[e.Ino] = p
			}
		}
		if !linked {
			switch e.Type {
			case index.Dir:
				h.Typeflag = tar.TypeDir
				h.Name = p + "/"
				if p == "" {
					h.Name = "./"
				}
			case index.Reg:
				h.Typeflag, h.Size = tar.TypeReg, e.Size
			case index.Symlink:
				h.Typeflag, h.Linkname = tar.TypeSymlink, e.Link
			case index.Char:
				h.Typeflag = tar.TypeChar
			case index.Block:
				h.Typeflag = tar.TypeBlock
			case index.Fifo:
				h.Typeflag = tar.TypeFifo
			default:
				return fmt.Errorf("export: %s: tar cannot hold a %s", p, e.Type)
			}
		}
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("export: %s: %w", p, err)
		}
		if h.Typeflag != tar.TypeReg || e.Size == 0 {
			return nil
		}
		r, err := layers.File(&e.Inode)
		if err != nil {
			return fmt.Errorf("export: %w (%s)", err, p)
		}
		n, err := io.CopyBuffer(tw, r, buf)
		if err == nil && n != e.Size {
			err = io.ErrUnexpectedEOF
		}
		if err != nil {
			return fmt.Errorf("export: %s: reading layer %d content: %w", p, e.Layer, err)
		}
		written += n
		if opts.Progress != nil && written-lastReport > 8<<20 {
			opts.Progress(written)
			lastReport = written
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if opts.Progress != nil {
		opts.Progress(written)
	}
	return bw.Flush()
}
