// Package fsview serves the merged tree of an image as a read-only FUSE file system: the go-fuse
// v2 node tree over an index.Index, with file contents read on demand from the layers'
// uncompressed streams. It is the only package that speaks syscall.Errno.
//
// The view owns the FUSE side of a mount: which operations exist and what they answer, inode
// identity, the kernel caching policy and the mount options. It deliberately leaves to others
// how the index was built or loaded, how layer bytes are decoded and cached (the io.ReaderAt of
// each layer does that), and process concerns such as flags, signals and daemonising
// (cmd/ocimount).
//
// # Shape
//
// Nodes are made lazily: a directory's children become go-fuse Inodes only when the kernel
// looks them up (directly or through readdirplus), and go away when the kernel forgets them,
// so a mount costs memory for what is in use, not for the whole tree. A node holds the index
// entry it was found by and nothing else; every attribute is read from the index when asked.
//
// Inode numbers are stable: the index's InodeID + 1, with a constant generation. Hard links
// share one InodeID, so go-fuse, which keys its nodes by (Ino, Gen), hands every name of a hard
// link the same Inode object, and stat(2) shows one inode with the index's link count.
//
// # Caching
//
// The image never changes while it is mounted, so the kernel may cache everything for long:
// entries, negative entries and attributes time out after Timeout, open files keep their page
// cache (FOPEN_KEEP_CACHE), directory listings are cached (FOPEN_CACHE_DIR) and so are symlink
// targets. Extended attributes are switched off altogether when the image has none, which
// saves the kernel a getxattr round trip per security check.
//
// # Errors
//
// Every operation that would change the tree fails with EROFS; the mount is also made with
// the "ro" option, so the kernel answers most of them without asking. A layer that cannot be
// read (a damaged blob found only now) makes read fail with EIO, and Options.Logf hears why.
package fsview

import (
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/ocirender/ocirender/index"
)

// DefaultTimeout is how long the kernel may cache entries and attributes when
// Options.Timeout is zero. The image is immutable: only memory pressure needs to evict them.
const DefaultTimeout = 24 * time.Hour

// blockSize is the block size statfs reports and the preferred I/O size of every file.
const blockSize = 4096

// Options tune a View. The zero value mounts a private, read-only view with long timeouts.
type Options struct {
	// Name names the image in the mount table: the file system source is "ocimount:"+Name.
	Name string
	// AllowOther lets users other than the one who mounted see the view (the allow_other
	// mount option; needs root or user_allow_other in /etc/fuse.conf).
	AllowOther bool
	// Debug logs every FUSE request and reply (through go-fuse's logger, on stderr).
	Debug bool
	// Timeout is how long the kernel caches entries and attributes; 0 = DefaultTimeout.
	Timeout time.Duration
	// Logf, when set, hears about failures that reach the kernel only as an errno: a layer
	// that cannot be read makes read(2) fail with EIO, and Logf learns which file and why.
	Logf func(format string, args ...any)
}

// View is a read-only file system over a merged index. It is safe for concurrent use, as the
// index and the layer readers are.
type View struct {
	ix      *index.Index
	layers  index.Content
	opts    Options
	content uint64 // bytes of regular file content, for statfs
	root    *dir
}

// New returns a view of ix whose regular files read their bytes from layers: layer i's
// uncompressed tar stream, as index.Inode.Layer and Offset locate them.
func New(ix *index.Index, layers index.Content, opts Options) *View {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	v := &View{ix: ix, layers: layers, opts: opts, content: uint64(ix.ContentSize())}
	v.root = &dir{node: node{v: v, id: index.Root}}
	return v
}

// Root returns the root directory node, for fs.Mount or fs.NewNodeFS.
func (v *View) Root() fs.InodeEmbedder { return v.root }

// FSOptions returns the go-fuse options the view is meant to be mounted with: timeouts,
// mount options (ro, default_permissions, fsname, subtype), stable root inode number.
func (v *View) FSOptions() *fs.Options {
	t := v.opts.Timeout
	fsname := "ocimount"
	if v.opts.Name != "" {
		fsname += ":" + v.opts.Name
	}
	return &fs.Options{
		MountOptions: fuse.MountOptions{
			Options:    []string{"ro", "default_permissions"},
			AllowOther: v.opts.AllowOther,
			FsName:     fsname,
			Name:       "ocimount",
			// Mount with mount(2) when we may (root): no fusermount process to wait for. As
			// any other user, go-fuse falls back to fusermount.
			DirectMount:      true,
			DirectMountFlags: syscall.MS_RDONLY | syscall.MS_NOSUID | syscall.MS_NODEV,
			DisableXAttrs:    !v.ix.HasXattrs(),
			// Symlink targets and file contents never change: let the kernel keep them and
			// never invalidate them on its own.
			EnableSymlinkCaching:     true,
			ExplicitDataCacheControl: true,
			Debug:                    v.opts.Debug,
		},
		EntryTimeout:    &t,
		AttrTimeout:     &t,
		NegativeTimeout: &t,
		// Modes are the image's: a file of mode 0000 stays 0000.
		NullPermissions: true,
		RootStableAttr:  &fs.StableAttr{Ino: v.stableIno(index.Root), Gen: generation},
	}
}

// Mount mounts the view on dir and serves it in the background. It returns once the kernel
// has the mount; Server.Wait waits for it to be unmounted.
func (v *View) Mount(dir string) (*fuse.Server, error) {
	return fs.Mount(dir, v.Root(), v.FSOptions())
}

// Mount mounts a view of ix and layers on dir; see New and View.Mount.
func Mount(dir string, ix *index.Index, layers index.Content, opts Options) (*fuse.Server, error) {
	return New(ix, layers, opts).Mount(dir)
}

// generation is the generation of every node: inode numbers are never reused by one view.
const generation = 1

// stableIno is the inode number the kernel sees for entry id: 0 is reserved by go-fuse (it
// means "pick one"), so InodeID + 1.
func (v *View) stableIno(id index.ID) uint64 { return uint64(v.ix.Ino(id)) + 1 }

// stableAttr is the go-fuse identity of entry id: hard links share it.
func (v *View) stableAttr(id index.ID) fs.StableAttr {
	return fs.StableAttr{Mode: typeBits(v.ix.Type(id)), Ino: v.stableIno(id), Gen: generation}
}

func (v *View) logf(format string, args ...any) {
	if v.opts.Logf != nil {
		v.opts.Logf(format, args...)
	}
}

// typeBits are the S_IFMT bits of t.
func typeBits(t index.Type) uint32 {
	switch t {
	case index.Dir:
		return syscall.S_IFDIR
	case index.Reg:
		return syscall.S_IFREG
	case index.Symlink:
		return syscall.S_IFLNK
	case index.Char:
		return syscall.S_IFCHR
	case index.Block:
		return syscall.S_IFBLK
	case index.Fifo:
		return syscall.S_IFIFO
	case index.Socket:
		return syscall.S_IFSOCK
	}
	return syscall.S_IFREG
}

// fillAttr sets out to the attributes of entry id.
func (v *View) fillAttr(id index.ID, out *fuse.Attr) {
	ino := v.ix.Ino(id)
	in := v.ix.Inode(ino)
	out.Ino = uint64(ino) + 1
	out.Mode = typeBits(in.Type) | in.Mode&07777
	if in.Type == index.Symlink {
		out.Mode = syscall.S_IFLNK | 0o777 // as an unpacked tree shows it: Linux ignores a symlink's mode
	}
	out.Nlink = in.Nlink
	out.Uid, out.Gid = in.UID, in.GID
	if in.Type != index.Dir {
		out.Size = uint64(in.Size)
	}
	out.Blocks = (out.Size + 511) / 512
	out.Blksize = blockSize
	if in.Type == index.Char || in.Type == index.Block {
		out.Rdev = uint32(unixMkdev(in.Devmajor, in.Devminor))
	}
	sec, nsec := splitNs(in.Mtime)
	out.Mtime, out.Mtimensec = sec, nsec
	out.Atime, out.Atimensec = sec, nsec
	out.Ctime, out.Ctimensec = sec, nsec
}

// splitNs splits nanoseconds since the epoch into seconds (two's complement before 1970, as
// the kernel reads them) and a non-negative nanosecond part.
func splitNs(ns int64) (uint64, uint32) {
	sec, nsec := ns/1e9, ns%1e9
	if nsec < 0 {
		sec--
		nsec += 1e9
	}
	return uint64(sec), uint32(nsec)
}

// unixMkdev encodes a device number the way FUSE carries it (the kernel's new_encode_dev in
// 32 bits: 12 bits of major, 20 of minor).
func unixMkdev(major, minor uint32) uint32 {
	return minor&0xff | (major&0xfff)<<8 | (minor&^0xff)<<12
}

// statfs reports the image: its content in 4 KiB blocks, none free, one file per inode.
func (v *View) statfs(out *fuse.StatfsOut) {
	*out = fuse.StatfsOut{
		Blocks:  (v.content + blockSize - 1) / blockSize,
		Files:   uint64(v.ix.Inodes()),
		Bsize:   blockSize,
		Frsize:  blockSize,
		NameLen: 255,
	}
}
