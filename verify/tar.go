package verify

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"path"
	"sort"
	"strings"

	"github.com/ocirender/ocirender/internal/tarattr"
)

// ScanTar lists the tree a tar stream would extract to, without extracting it: one Entry
// per path, sorted by Path, with every regular file's content hashed as it streams by.
//
// It reads the tar as GNU tar extracts it as root: names are cleaned ("./etc/" is "etc",
// "./" is the root ""), a later entry for a path replaces the earlier one, a hard link is
// another name of the inode its target names at that point, PAX SCHILY.xattr.* (and
// libarchive's LIBARCHIVE.xattr.*) records are xattrs, a record with an empty value sets
// nothing. Symlinks are listed with mode 0777, as Linux creates every symlink. A name that
// leaves the root, a hard link to a missing name and an entry type that makes no file
// (volume labels, multi-volume continuations) are errors.
func ScanTar(ctx context.Context, r io.Reader) ([]Entry, error) {
	tr := tar.NewReader(r)
	byPath := map[string]int{} // path -> index in entries
	var entries []Entry
	var inodes []int // entry -> inode number, for hard-link groups
	nextIno := 0
	buf := make([]byte, 1<<20)
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("verify: tar: %w", err)
		}
		p, err := tarPath(h.Name)
		if err != nil {
			return nil, err
		}
		var e Entry
		ino := -1
		switch h.Typeflag {
		case tar.TypeLink:
			target, err := tarPath(h.Linkname)
			if err != nil {
				return nil, err
			}
			i, ok := byPath[target]
			if !ok || entries[i].Type == Dir {
				return nil, fmt.Errorf("verify: tar: %q: hard link to %q, which is no file before it", p, target)
			}
			e, ino = entries[i], inodes[i]
		case tar.TypeReg, tar.TypeChar, tar.TypeBlock, tar.TypeDir, tar.TypeFifo, tar.TypeSymlink,
			tar.TypeCont, tar.TypeGNUSparse, '\x00':
			if e, err = tarEntry(h); err != nil {
				return nil, fmt.Errorf("verify: tar: %q: %w", p, err)
			}
			if e.Type == Reg {
				h := sha256.New()
				n, err := io.CopyBuffer(h, tr, buf)
				if err != nil {
					return nil, fmt.Errorf("verify: tar: %q: %w", p, err)
				}
				e.Size, e.Digest = n, hex.EncodeToString(h.Sum(nil))
			}
			if e.Type != Dir {
				ino, nextIno = nextIno, nextIno+1
			}
		default:
			return nil, fmt.Errorf("verify: tar: %q: entry type %q makes no file", p, h.Typeflag)
		}
		e.Path = p
		if i, ok := byPath[p]; ok {
			entries[i], inodes[i] = e, ino
		} else {
			byPath[p] = len(entries)
			entries = append(entries, e)
			inodes = append(inodes, ino)
		}
	}
	groups := map[int][]int{}
	for i, ino := range inodes {
		if ino >= 0 {
			groups[ino] = append(groups[ino], i)
		}
	}
	nameLinkGroups(groups, func(i int) *Entry { return &entries[i] })
	sort.Slice(entries, func(i, j int) bool { return entries[i].Path < entries[j].Path })
	return entries, nil
}

// tarPath cleans a tar name into an Entry path.
func tarPath(name string) (string, error) {
	p := path.Clean("/" + name)
	if strings.HasPrefix(path.Clean(name), "../") || path.Clean(name) == ".." {
		return "", fmt.Errorf("verify: tar: name %q leaves the root", name)
	}
	return strings.TrimPrefix(p, "/"), nil
}

// tarEntry is the entry of a header that makes a file of its own.
func tarEntry(h *tar.Header) (Entry, error) {
	if h.Uid < 0 || h.Gid < 0 || h.Uid > math.MaxUint32 || h.Gid > math.MaxUint32 {
		return Entry{}, fmt.Errorf("uid/gid %d/%d out of range", h.Uid, h.Gid)
	}
	e := Entry{Mode: uint32(h.Mode) & 07777, UID: uint32(h.Uid), GID: uint32(h.Gid), MtimeNs: tarattr.UnixNano(h.ModTime)}
	switch h.Typeflag {
	case tar.TypeDir:
		e.Type = Dir
	case tar.TypeSymlink:
		e.Type, e.Mode, e.Link = Symlink, 0o777, h.Linkname
	case tar.TypeChar, tar.TypeBlock:
		e.Type = Char
		if h.Typeflag == tar.TypeBlock {
			e.Type = Block
		}
		if h.Devmajor < 0 || h.Devminor < 0 || h.Devmajor > math.MaxUint32 || h.Devminor > math.MaxUint32 {
			return e, fmt.Errorf("device %d,%d out of range", h.Devmajor, h.Devminor)
		}
		e.Devmajor, e.Devminor = uint32(h.Devmajor), uint32(h.Devminor)
	case tar.TypeFifo:
		e.Type = Fifo
	default:
		e.Type = Reg
	}
	xs, err := tarattr.Xattrs(h.PAXRecords)
	if err != nil {
		return e, err
	}
	for _, x := range xs {
		if e.Xattrs == nil {
			e.Xattrs = map[string]string{}
		}
		e.Xattrs[x.Name] = x.Value
	}
	return e, nil
}
