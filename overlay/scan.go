package overlay

import (
	"archive/tar"
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/ocirender/ocirender/index"
	"github.com/ocirender/ocirender/internal/tarattr"
)

// Change is one entry of a layer's changeset, as read from its tar stream.
type Change struct {
	Name     string // the header's name, uncleaned
	Hardlink bool   // a hard link to the path in Inode.Link
	index.Inode
}

// ScanOptions bound what ReadChanges accepts. The zero value uses the defaults.
type ScanOptions struct {
	Layer      int // recorded in every Change's Inode.Layer
	MaxEntries int // entries in one layer; default DefaultMaxEntries
}

// DefaultMaxEntries bounds the entries of one layer (and of the merged tree).
const DefaultMaxEntries = 1 << 24

// Limits on names, enforced while reading and merging.
const (
	MaxPathLen = 4096 // bytes of a cleaned path (Linux PATH_MAX)
	MaxNameLen = 255  // bytes of one path component (Linux NAME_MAX)
)

// ErrUnsupported marks tar entries this tool cannot represent.
var ErrUnsupported = errors.New("unsupported")

// countingReader counts the bytes the tar reader consumed, which after Next is the offset of
// the entry's data in the uncompressed stream: archive/tar reads headers exactly and never
// ahead, as long as the reader it is given cannot seek.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// ReadChanges reads the uncompressed tar stream of one layer and returns its entries with
// the offset of each regular file's data in that stream. It does not interpret names:
// whiteouts and paths are Apply's business. PAX global headers are skipped.
func ReadChanges(r io.Reader, opts ScanOptions) ([]Change, error) {
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = DefaultMaxEntries
	}
	cr := &countingReader{r: bufio.NewReaderSize(r, 64<<10)}
	tr := tar.NewReader(cr)
	var out []Change
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			if len(out) > 0 {
				return nil, fmt.Errorf("after entry %q: %w", out[len(out)-1].Name, tarError(err))
			}
			return nil, tarError(err)
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		if len(out) >= opts.MaxEntries {
			return nil, fmt.Errorf("more than %d entries in one layer", opts.MaxEntries)
		}
		c, err := changeFromHeader(hdr, cr.n, opts.Layer)
		if err != nil {
			return nil, fmt.Errorf("entry %q: %w", hdr.Name, err)
		}
		out = append(out, c)
	}
}

func tarError(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("tar stream truncated: %w", err)
	}
	return fmt.Errorf("bad tar stream: %w", err)
}

func changeFromHeader(hdr *tar.Header, offset int64, layer int) (Change, error) {
	c := Change{Name: hdr.Name}
	c.Layer = layer
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeCont:
		c.Type = index.Reg
		c.Size = hdr.Size
		c.Offset = offset
	case tar.TypeLink:
		c.Hardlink = true
		c.Link = hdr.Linkname
	case tar.TypeSymlink:
		c.Type = index.Symlink
		c.Link = hdr.Linkname
		c.Size = int64(len(hdr.Linkname))
	case tar.TypeChar:
		c.Type = index.Char
	case tar.TypeBlock:
		c.Type = index.Block
	case tar.TypeDir:
		c.Type = index.Dir
	case tar.TypeFifo:
		c.Type = index.Fifo
	case tar.TypeGNUSparse:
		return c, fmt.Errorf("%w: GNU sparse file", ErrUnsupported)
	default:
		return c, fmt.Errorf("%w: tar entry type %q", ErrUnsupported, hdr.Typeflag)
	}
	if hdr.Size < 0 {
		return c, fmt.Errorf("negative size %d", hdr.Size)
	}
	if hdr.Typeflag == tar.TypeLink || hdr.Typeflag == tar.TypeSymlink {
		if hdr.Linkname == "" {
			return c, errors.New("empty link target")
		}
		if len(hdr.Linkname) > MaxPathLen {
			return c, fmt.Errorf("link target longer than %d bytes", MaxPathLen)
		}
	}
	c.Mode = uint32(hdr.Mode & 07777)
	if hdr.Uid < 0 || hdr.Gid < 0 || uint64(hdr.Uid) > math.MaxUint32 || uint64(hdr.Gid) > math.MaxUint32 {
		return c, fmt.Errorf("uid/gid %d/%d out of range", hdr.Uid, hdr.Gid)
	}
	c.UID, c.GID = uint32(hdr.Uid), uint32(hdr.Gid)
	c.Mtime = tarattr.UnixNano(hdr.ModTime)
	if c.Type == index.Char || c.Type == index.Block {
		if hdr.Devmajor < 0 || hdr.Devminor < 0 || hdr.Devmajor > math.MaxUint32 || hdr.Devminor > math.MaxUint32 {
			return c, fmt.Errorf("device numbers %d,%d out of range", hdr.Devmajor, hdr.Devminor)
		}
		c.Devmajor, c.Devminor = uint32(hdr.Devmajor), uint32(hdr.Devminor)
	}
	for k, v := range hdr.PAXRecords {
		if v != "" && strings.HasPrefix(k, "GNU.sparse.") {
			return c, fmt.Errorf("%w: GNU sparse file", ErrUnsupported)
		}
	}
	xs, err := tarattr.Xattrs(hdr.PAXRecords)
	if err != nil {
		return c, err
	}
	for _, x := range xs {
		c.Xattrs = append(c.Xattrs, index.Xattr{Name: x.Name, Value: x.Value})
	}
	for _, x := range c.Xattrs {
		if x.Name == "" || strings.IndexByte(x.Name, 0) >= 0 {
			return c, fmt.Errorf("bad xattr name %q", x.Name)
		}
	}
	return c, nil
}
