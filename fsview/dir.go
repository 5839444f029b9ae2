package fsview

import (
	"context"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/ocirender/ocirender/index"
)

// dir is a directory. Its children are read from the index when the kernel asks for them.
type dir struct{ node }

var (
	_ = (fs.NodeLookuper)((*dir)(nil))
	_ = (fs.NodeOpendirHandler)((*dir)(nil))
	_ = (fs.NodeReaddirer)((*dir)(nil))
	_ = (fs.NodeCreater)((*dir)(nil))
	_ = (fs.NodeMkdirer)((*dir)(nil))
	_ = (fs.NodeMknoder)((*dir)(nil))
	_ = (fs.NodeLinker)((*dir)(nil))
	_ = (fs.NodeSymlinker)((*dir)(nil))
	_ = (fs.NodeUnlinker)((*dir)(nil))
	_ = (fs.NodeRmdirer)((*dir)(nil))
	_ = (fs.NodeRenamer)((*dir)(nil))
	_ = (fs.NodeTmpfiler)((*dir)(nil))
)

func (d *dir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	id, ok := d.v.ix.Child(d.id, name)
	if !ok {
		return nil, syscall.ENOENT
	}
	return d.child(ctx, id, name, out), 0
}

// child returns the node of entry id, named name in d, and fills out with its attributes.
// go-fuse keeps one Inode per (Ino, Gen): an entry it knows already, under this name or
// (a hard link) under another, comes back as that Inode, and the node made here is dropped.
func (d *dir) child(ctx context.Context, id index.ID, name string, out *fuse.EntryOut) *fs.Inode {
	d.v.fillAttr(id, &out.Attr)
	if ch := d.GetChild(name); ch != nil {
		return ch
	}
	return d.NewInode(ctx, d.v.newNode(id), d.v.stableAttr(id))
}

// OpendirHandle opens a listing the kernel may cache: the directory never changes.
func (d *dir) OpendirHandle(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	return &dirStream{d: d}, fuse.FOPEN_CACHE_DIR | fuse.FOPEN_KEEP_CACHE, 0
}

// Readdir lists d (go-fuse uses OpendirHandle instead; this serves other callers).
func (d *dir) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	return &dirStream{d: d}, 0
}

func (d *dir) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	return nil, nil, 0, syscall.EROFS
}

func (d *dir) Tmpfile(ctx context.Context, flags, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	return nil, nil, 0, syscall.EROFS
}

func (d *dir) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}

func (d *dir) Mknod(ctx context.Context, name string, mode, dev uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}

func (d *dir) Link(ctx context.Context, target fs.InodeEmbedder, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}

func (d *dir) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}

func (d *dir) Unlink(ctx context.Context, name string) syscall.Errno { return syscall.EROFS }

func (d *dir) Rmdir(ctx context.Context, name string) syscall.Errno { return syscall.EROFS }

func (d *dir) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	return syscall.EROFS
}

// dirStream lists a directory straight from the index: ".", "..", then the children sorted
// bytewise. Offsets are positions in that list, so a listing can be resumed anywhere.
type dirStream struct {
	d    *dir
	pos  int      // next position: 0 ".", 1 "..", 2+i child i
	last index.ID // the child returned last, for Lookup
}

var (
	_ = (fs.DirStream)((*dirStream)(nil))
	_ = (fs.FileReaddirenter)((*dirStream)(nil))
	_ = (fs.FileSeekdirer)((*dirStream)(nil))
	_ = (fs.FileLookuper)((*dirStream)(nil))
	_ = (fs.FileReleasedirer)((*dirStream)(nil))
)

func (s *dirStream) HasNext() bool { return s.pos < 2+len(s.d.v.ix.Children(s.d.id)) }

func (s *dirStream) Next() (fuse.DirEntry, syscall.Errno) {
	v, id := s.d.v, s.d.id
	var e fuse.DirEntry
	switch s.pos {
	case 0:
		e = fuse.DirEntry{Name: ".", Mode: syscall.S_IFDIR, Ino: v.stableIno(id)}
	case 1:
		parent := v.ix.Parent(id)
		if parent == index.NoParent {
			parent = id
		}
		e = fuse.DirEntry{Name: "..", Mode: syscall.S_IFDIR, Ino: v.stableIno(parent)}
	default:
		k := v.ix.Children(id)[s.pos-2]
		s.last = k
		e = fuse.DirEntry{Name: v.ix.Name(k), Mode: typeBits(v.ix.Type(k)), Ino: v.stableIno(k)}
	}
	s.pos++
	e.Off = uint64(s.pos)
	return e, 0
}

func (s *dirStream) Close() {}

func (s *dirStream) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	if !s.HasNext() {
		return nil, 0
	}
	e, errno := s.Next()
	return &e, errno
}

func (s *dirStream) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	if off > uint64(2+len(s.d.v.ix.Children(s.d.id))) {
		return syscall.EINVAL
	}
	s.pos = int(off)
	return 0
}

// Lookup serves readdirplus: the entry just listed needs no search by name.
func (s *dirStream) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	v := s.d.v
	if s.pos >= 2 && v.ix.Name(s.last) == name {
		return s.d.child(ctx, s.last, name, out), 0
	}
	return s.d.Lookup(ctx, name, out)
}

func (s *dirStream) Releasedir(ctx context.Context, releaseFlags uint32) {}
