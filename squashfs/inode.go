package squashfs

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Inode is the metadata of one inode. Hard links are entries that name the same inode:
// the same Number (and, in images of mksquashfs or ocirender, the same Ref).
type Inode struct {
	Ref      uint64 // inode reference: table block << 16 | offset
	Number   uint32
	Type     Type
	Extended bool   // stored in the extended form
	Mode     uint32 // permission bits with setuid, setgid and sticky (07777)
	UID, GID uint32
	Mtime    int64  // seconds since the epoch (0..2^32-1)
	Nlink    uint32 // as stored
	// Size is the length of the content (regular files), of the target (symlinks) or of the
	// listing (directories, as stored: 3 more than its bytes).
	Size               int64
	Link               string // symlink target
	Devmajor, Devminor uint32

	xattr uint32

	// Regular files.
	start    uint64  // position of the first data block
	frag     uint32  // fragment block holding the tail, or noFragment
	fragOff  uint32  // offset of the tail in the decoded fragment block
	blocks   metaPos // where the block size list starts
	fragOnly bool    // all the content is in the fragment

	// Directories.
	dirBlock   uint32 // listing: block position relative to the directory table
	dirOff     int    // and offset in the decoded block
	parent     uint32
	indexCount int
	index      metaPos // where the directory index starts (extended form)
}

// HasXattrs reports whether the inode names an xattr set.
func (in *Inode) HasXattrs() bool { return in.xattr != noXattr }

// listingLen is the number of bytes of the directory's listing.
func (in *Inode) listingLen() int64 { return max(in.Size-dirSizeExtra, 0) }

// Root returns the root directory's inode.
func (fs *FS) Root() (*Inode, error) {
	in, err := fs.Inode(fs.sb.rootInode)
	if err != nil {
		return nil, fmt.Errorf("root inode: %w", err)
	}
	return in, nil
}

// Inode reads the inode at reference ref.
func (fs *FS) Inode(ref uint64) (*Inode, error) {
	block, off := ref>>16, int(ref&0xffff)
	if off >= metaSize || block >= fs.sb.dirTable-fs.sb.inodeTable {
		return nil, corrupt("inode reference %#x lies outside the inode table", ref)
	}
	m, err := fs.metaAt(fs.sb.inodeTable+block, off, fs.sb.dirTable)
	if err != nil {
		return nil, fmt.Errorf("inode %#x: %w", ref, err)
	}
	in, err := fs.parseInode(m)
	if err != nil {
		return nil, fmt.Errorf("inode %#x: %w", ref, err)
	}
	in.Ref = ref
	return in, nil
}

func (fs *FS) parseInode(m *metaReader) (*Inode, error) {
	le := binary.LittleEndian
	var h [16]byte
	if err := m.read(h[:]); err != nil {
		return nil, err
	}
	t := le.Uint16(h[0:])
	in := &Inode{Mode: uint32(le.Uint16(h[2:])) & 07777, Mtime: int64(le.Uint32(h[8:])),
		Number: le.Uint32(h[12:]), xattr: noXattr, frag: noFragment}
	if t == 0 || t > 2*extended {
		return nil, corrupt("unknown inode type %d", t)
	}
	if t > extended {
		in.Extended = true
		t -= extended
	}
	in.Type = Type(t)
	uidx, gidx := le.Uint16(h[4:]), le.Uint16(h[6:])
	if int(uidx) >= len(fs.ids) || int(gidx) >= len(fs.ids) {
		return nil, corrupt("uid/gid index %d/%d beyond the %d ids", uidx, gidx, len(fs.ids))
	}
	in.UID, in.GID = fs.ids[uidx], fs.ids[gidx]

	var b [40]byte
	body := func(n int) ([]byte, error) {
		err := m.read(b[:n])
		return b[:n], err
	}
	switch {
	case in.Type == Dir && !in.Extended:
		p, err := body(16)
		if err != nil {
			return nil, err
		}
		in.dirBlock, in.Nlink = le.Uint32(p), le.Uint32(p[4:])
		in.Size, in.dirOff, in.parent = int64(le.Uint16(p[8:])), int(le.Uint16(p[10:])), le.Uint32(p[12:])
	case in.Type == Dir:
		p, err := body(24)
		if err != nil {
			return nil, err
		}
		in.Nlink, in.Size, in.dirBlock, in.parent = le.Uint32(p), int64(le.Uint32(p[4:])), le.Uint32(p[8:]), le.Uint32(p[12:])
		in.indexCount, in.dirOff, in.xattr = int(le.Uint16(p[16:])), int(le.Uint16(p[18:])), le.Uint32(p[20:])
		in.index = m.pos()
	case in.Type == Reg && !in.Extended:
		p, err := body(16)
		if err != nil {
			return nil, err
		}
		in.start, in.frag, in.fragOff, in.Size = uint64(le.Uint32(p)), le.Uint32(p[4:]), le.Uint32(p[8:]), int64(le.Uint32(p[12:]))
		in.Nlink = 1
		in.blocks = m.pos()
	case in.Type == Reg:
		p, err := body(40)
		if err != nil {
			return nil, err
		}
		size := le.Uint64(p[8:])
		if size > math.MaxInt64 {
			return nil, corrupt("file size %d", size)
		}
		in.start, in.Size = le.Uint64(p), int64(size)
		in.Nlink, in.frag, in.fragOff, in.xattr = le.Uint32(p[24:]), le.Uint32(p[28:]), le.Uint32(p[32:]), le.Uint32(p[36:])
		in.blocks = m.pos()
	case in.Type == Symlink:
		p, err := body(8)
		if err != nil {
			return nil, err
		}
		in.Nlink = le.Uint32(p)
		n := le.Uint32(p[4:])
		if n > maxSymlink {
			return nil, corrupt("symlink target of %d bytes", n)
		}
		target := make([]byte, n)
		if err := m.read(target); err != nil {
			return nil, err
		}
		in.Link, in.Size = string(target), int64(n)
		if in.Extended {
			if in.xattr, err = m.u32(); err != nil {
				return nil, err
			}
		}
	case in.Type == Block || in.Type == Char:
		n := 8
		if in.Extended {
			n = 12
		}
		p, err := body(n)
		if err != nil {
			return nil, err
		}
		in.Nlink = le.Uint32(p)
		dev := le.Uint32(p[4:])
		in.Devmajor, in.Devminor = decodeDev(dev)
		if in.Extended {
			in.xattr = le.Uint32(p[8:])
		}
	default: // fifo, socket
		n := 4
		if in.Extended {
			n = 8
		}
		p, err := body(n)
		if err != nil {
			return nil, err
		}
		in.Nlink = le.Uint32(p)
		if in.Extended {
			in.xattr = le.Uint32(p[4:])
		}
	}
	if in.Type == Reg {
		if in.frag != noFragment && in.frag >= fs.sb.fragments {
			return nil, corrupt("fragment %d of %d", in.frag, fs.sb.fragments)
		}
		in.fragOnly = in.frag != noFragment && in.Size < int64(fs.bs)
	}
	if in.Type == Dir && in.dirOff >= metaSize {
		return nil, corrupt("directory listing offset %d", in.dirOff)
	}
	return in, nil
}

// blockCount is the number of entries in a regular file's block list.
func (in *Inode) blockCount(bs int) int64 {
	if in.frag != noFragment {
		return in.Size / int64(bs)
	}
	return (in.Size + int64(bs) - 1) / int64(bs)
}

// DiskOrder is a key for reading many regular files with few seeks: sorted by it, files
// whose content has full blocks come first, in the order their blocks lie in the image, then
// files held whole in fragments, by fragment block.
func (in *Inode) DiskOrder() uint64 {
	if in.fragOnly {
		return 1<<63 | uint64(in.frag)
	}
	return in.start
}
