// Package index holds the merged tree of an image: one entry per final path, the inodes those
// entries name, and for every regular file a content locator (layer, offset of the data in that
// layer's uncompressed tar stream, size).
//
// The index is the single truth that every output (tar, directory, squashfs, the FUSE view,
// inspection) is derived from. It is built once by package overlay through a Builder and is
// immutable afterwards, so any number of goroutines may read it.
//
// It is stored compactly: entries and inodes live in flat slices of small fixed-size records,
// names and link targets in one string table, and xattr sets are interned (most files share
// none). Children of a directory are kept sorted bytewise by name, so walks are ordered and
// lookups are binary searches. Index knows nothing about tar, whiteouts, FUSE or output formats.
package index

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Type is the file type of an inode.
type Type uint8

// The file types an image can hold.
const (
	Dir Type = iota + 1
	Reg
	Symlink
	Char
	Block
	Fifo
	Socket
)

var typeNames = [...]string{"?", "dir", "file", "symlink", "char", "block", "fifo", "socket"}

func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// ID names an entry (a path) of the index. The root is ID 0.
type ID uint32

// Root is the ID of the root directory.
const Root ID = 0

// NoParent is the parent of the root.
const NoParent ID = ^ID(0)

// InodeID names an inode. Hard links are entries that share one.
type InodeID uint32

// Xattr is one extended attribute; Value holds raw bytes.
type Xattr struct {
	Name, Value string
}

// NoLayer marks an inode that no layer entry created (an implicit parent directory).
const NoLayer = -1

// Inode is the metadata and content locator shared by all names of one file.
type Inode struct {
	Type     Type
	Mode     uint32 // permission bits, with setuid, setgid and sticky (07777)
	UID, GID uint32
	Mtime    int64 // nanoseconds since the Unix epoch
	Size     int64 // bytes of content (regular files), length of the target (symlinks)
	Devmajor uint32
	Devminor uint32
	Link     string  // symlink target
	Xattrs   []Xattr // sorted by name; shared between inodes: never modify
	Layer    int     // layer the inode came from, or NoLayer
	Offset   int64   // offset of the content in the layer's uncompressed tar stream (Reg)
	Nlink    uint32  // names of this inode (directories: 2 + subdirectories)
}

// Entry is one path of the index.
type Entry struct {
	Name   string // base name; "" for the root
	Parent ID
	Ino    InodeID
	Inode
}

// strRef locates a string in the string table.
type strRef struct{ off, len uint32 }

type entryRec struct {
	name   strRef
	parent ID
	ino    InodeID
	kids   uint32 // first child in Index.kids
	nkids  uint32
}

type inodeRec struct {
	mtime    int64
	size     int64
	offset   int64
	uid, gid uint32
	mode     uint32
	devmajor uint32
	devminor uint32
	link     strRef
	xattrs   uint32 // index into xsets; 0 = none
	nlink    uint32
	layer    int32
	typ      Type
}

// Index is the merged, immutable tree of an image.
type Index struct {
	entries []entryRec
	inodes  []inodeRec
	kids    []ID
	strs    []byte
	xsets   [][]Xattr // xsets[0] is the empty set
}

// Len is the number of entries, the root included.
func (ix *Index) Len() int { return len(ix.entries) }

// Inodes is the number of distinct inodes.
func (ix *Index) Inodes() int { return len(ix.inodes) }

// HasXattrs reports whether any inode carries an extended attribute.
func (ix *Index) HasXattrs() bool { return len(ix.xsets) > 1 }

func (ix *Index) str(r strRef) string {
	return string(ix.strs[r.off : r.off+r.len])
}

// Name is the base name of id ("" for the root).
func (ix *Index) Name(id ID) string { return ix.str(ix.entries[id].name) }

// Parent is the directory holding id (NoParent for the root).
func (ix *Index) Parent(id ID) ID { return ix.entries[id].parent }

// Ino is the inode id names.
func (ix *Index) Ino(id ID) InodeID { return ix.entries[id].ino }

// Children lists the entries of directory id, sorted bytewise by name. The slice is shared:
// do not modify it.
func (ix *Index) Children(id ID) []ID {
	e := &ix.entries[id]
	return ix.kids[e.kids : e.kids+e.nkids : e.kids+e.nkids]
}

// Inode returns the metadata of inode ino.
func (ix *Index) Inode(ino InodeID) Inode {
	r := &ix.inodes[ino]
	in := Inode{
		Type:     r.typ,
		Mode:     r.mode,
		UID:      r.uid,
		GID:      r.gid,
		Mtime:    r.mtime,
		Size:     r.size,
		Devmajor: r.devmajor,
		Devminor: r.devminor,
		Layer:    int(r.layer),
		Offset:   r.offset,
		Nlink:    r.nlink,
	}
	if r.link.len > 0 {
		in.Link = ix.str(r.link)
	}
	if r.xattrs != 0 {
		in.Xattrs = ix.xsets[r.xattrs]
	}
	return in
}

// Type is the file type of id, without copying the rest of its inode.
func (ix *Index) Type(id ID) Type { return ix.inodes[ix.entries[id].ino].typ }

// Entry returns everything known about id.
func (ix *Index) Entry(id ID) Entry {
	e := &ix.entries[id]
	return Entry{Name: ix.str(e.name), Parent: e.parent, Ino: e.ino, Inode: ix.Inode(e.ino)}
}

// Child finds the entry called name in directory dir.
func (ix *Index) Child(dir ID, name string) (ID, bool) {
	kids := ix.Children(dir)
	i := sort.Search(len(kids), func(i int) bool { return ix.Name(kids[i]) >= name })
	if i < len(kids) && ix.Name(kids[i]) == name {
		return kids[i], true
	}
	return 0, false
}

// ErrNotExist is returned by Lookup for a path that is not in the index.
var ErrNotExist = errors.New("no such file or directory")

// ErrNotDir is returned by Lookup when a non-final component is not a directory.
var ErrNotDir = errors.New("not a directory")

// Lookup finds the entry at path p ("/a/b", "a/b", "." and "/" all work) without following
// symlinks in any component.
func (ix *Index) Lookup(p string) (ID, error) {
	return ix.resolveFrom(Root, p, noFollow, nil)
}

func (ix *Index) parentOrRoot(id ID) ID {
	if p := ix.Parent(id); p != NoParent {
		return p
	}
	return Root
}

// MaxSymlinkHops bounds symlink resolution, as the kernel's ELOOP does.
const MaxSymlinkHops = 255

// ErrLoop is returned when resolving a path meets more than MaxSymlinkHops symlinks.
var ErrLoop = errors.New("too many levels of symbolic links")

// Resolve finds the entry at path p following symlinks chroot-style: absolute targets start at
// the image root and ".." stops at the root. With follow false the final component is not
// followed (like lstat); parents always are.
func (ix *Index) Resolve(p string, follow bool) (ID, error) {
	hops := 0
	mode := followParents
	if follow {
		mode = followAll
	}
	return ix.resolveFrom(Root, p, mode, &hops)
}

// followMode says which symlinks a path walk follows.
type followMode uint8

const (
	noFollow      followMode = iota // none (Lookup)
	followParents                   // all but the final component (lstat)
	followAll                       // all (stat)
)

func (ix *Index) resolveFrom(dir ID, p string, follow followMode, hops *int) (ID, error) {
	if strings.HasPrefix(p, "/") {
		dir = Root
	}
	parts := strings.Split(p, "/")
	id := dir
	for i, c := range parts {
		if c == "" || c == "." {
			continue
		}
		if c == ".." {
			id = ix.parentOrRoot(id)
			continue
		}
		if ix.Type(id) != Dir {
			return 0, fmt.Errorf("%s: %w", p, ErrNotDir)
		}
		next, ok := ix.Child(id, c)
		if !ok {
			return 0, fmt.Errorf("%s: %w", p, ErrNotExist)
		}
		// A trailing slash ("lib/") names the directory a symlink points to, as in POSIX.
		last := i == len(parts)-1
		if ix.Type(next) == Symlink && follow != noFollow && (!last || follow == followAll) {
			*hops++
			if *hops > MaxSymlinkHops {
				return 0, fmt.Errorf("%s: %w", p, ErrLoop)
			}
			target := ix.Inode(ix.Ino(next)).Link
			var err error
			next, err = ix.resolveFrom(id, target, followAll, hops)
			if err != nil {
				return 0, err
			}
		}
		id = next
	}
	return id, nil
}

// Path is the slash-separated path of id relative to the root ("" for the root itself).
func (ix *Index) Path(id ID) string {
	var parts []string
	for id != Root && id != NoParent {
		parts = append(parts, ix.Name(id))
		id = ix.Parent(id)
	}
	for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
		parts[i], parts[j] = parts[j], parts[i]
	}
	return strings.Join(parts, "/")
}

// SkipDir, returned by a Walk callback for a directory, skips its children.
var SkipDir = errors.New("skip this directory")

// Walk calls fn for every entry below (and including) start in depth-first pre-order, children
// sorted bytewise, with the entry's path relative to the root ("" for the root).
func (ix *Index) Walk(start ID, fn func(id ID, path string) error) error {
	err := ix.walk(start, ix.Path(start), fn)
	if err == SkipDir {
		return nil
	}
	return err
}

func (ix *Index) walk(id ID, p string, fn func(ID, string) error) error {
	if err := fn(id, p); err != nil {
		return err
	}
	for _, k := range ix.Children(id) {
		kp := ix.Name(k)
		if p != "" {
			kp = p + "/" + kp
		}
		if err := ix.walk(k, kp, fn); err != nil && err != SkipDir {
			return err
		}
	}
	return nil
}

// Bytes is an estimate of the memory the index holds.
func (ix *Index) Bytes() int64 {
	const entrySize, inodeSize, idSize = 24, 64, 4
	n := int64(len(ix.entries))*entrySize + int64(len(ix.inodes))*inodeSize +
		int64(len(ix.kids))*idSize + int64(len(ix.strs))
	for _, s := range ix.xsets {
		for _, x := range s {
			n += int64(len(x.Name)+len(x.Value)) + 32
		}
	}
	return n
}

// ContentSize is the total size of the regular files' content, each inode counted once.
func (ix *Index) ContentSize() int64 {
	var n int64
	for i := range ix.inodes {
		if ix.inodes[i].typ == Reg {
			n += ix.inodes[i].size
		}
	}
	return n
}
