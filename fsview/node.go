package fsview

import (
	"context"
	"sort"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/ocirender/ocirender/index"
)

// node is what every kind of file shares: attributes, extended attributes, statfs, and EROFS
// for every change. It holds the entry it was looked up by; for a hard link that is whichever
// name the kernel met first, which is fine: all names share the inode the attributes come from.
type node struct {
	fs.Inode
	v  *View
	id index.ID
}

// newNode makes the node of the right kind for entry id.
func (v *View) newNode(id index.ID) fs.InodeEmbedder {
	switch v.ix.Type(id) {
	case index.Dir:
		return &dir{node: node{v: v, id: id}}
	case index.Reg:
		return &file{node: node{v: v, id: id}}
	case index.Symlink:
		return &symlink{node: node{v: v, id: id}}
	}
	return &node{v: v, id: id} // devices, fifos, sockets: the kernel serves their opens itself
}

var (
	_ = (fs.NodeGetattrer)((*node)(nil))
	_ = (fs.NodeSetattrer)((*node)(nil))
	_ = (fs.NodeGetxattrer)((*node)(nil))
	_ = (fs.NodeListxattrer)((*node)(nil))
	_ = (fs.NodeSetxattrer)((*node)(nil))
	_ = (fs.NodeRemovexattrer)((*node)(nil))
	_ = (fs.NodeStatfser)((*node)(nil))
)

func (n *node) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	n.v.fillAttr(n.id, &out.Attr)
	return 0
}

func (n *node) Setattr(ctx context.Context, f fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return syscall.EROFS
}

func (n *node) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	n.v.statfs(out)
	return 0
}

// Getxattr copies the value of attr into dest. A dest too small for it gets ERANGE and the
// size it needs (go-fuse answers a size probe, dest of length 0, with just that size).
func (n *node) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	xs := n.v.ix.Inode(n.v.ix.Ino(n.id)).Xattrs
	i := sort.Search(len(xs), func(i int) bool { return xs[i].Name >= attr })
	if i == len(xs) || xs[i].Name != attr {
		return 0, syscall.ENODATA
	}
	val := xs[i].Value
	if len(dest) < len(val) {
		return uint32(len(val)), syscall.ERANGE
	}
	return uint32(copy(dest, val)), 0
}

// Listxattr writes the names of the node's extended attributes, each followed by a NUL, in
// the index's (sorted) order, with the same ERANGE rule as Getxattr.
func (n *node) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	xs := n.v.ix.Inode(n.v.ix.Ino(n.id)).Xattrs
	size := 0
	for _, x := range xs {
		size += len(x.Name) + 1
	}
	if len(dest) < size {
		return uint32(size), syscall.ERANGE
	}
	k := 0
	for _, x := range xs {
		k += copy(dest[k:], x.Name)
		dest[k] = 0
		k++
	}
	return uint32(k), 0
}

func (n *node) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	return syscall.EROFS
}

func (n *node) Removexattr(ctx context.Context, attr string) syscall.Errno {
	return syscall.EROFS
}

// symlink is a symbolic link.
type symlink struct{ node }

var _ = (fs.NodeReadlinker)((*symlink)(nil))

func (s *symlink) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	return []byte(s.v.ix.Inode(s.v.ix.Ino(s.id)).Link), 0
}
