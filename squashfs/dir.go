package squashfs

import (
	"encoding/binary"
	"errors"
	"fmt"
	iofs "io/fs"
	"slices"
	"strings"
)

// DirEntry is one entry of a directory listing.
type DirEntry struct {
	Name   string
	Type   Type   // the basic type the listing records
	Ref    uint64 // the inode's reference
	Number uint32 // the inode's number, as the listing records it
}

// ReadDir returns the entries of directory dir in listing order (bytewise sorted in images
// of mksquashfs and ocirender), without "." and "..".
func (fs *FS) ReadDir(dir *Inode) ([]DirEntry, error) {
	if dir.Type != Dir {
		return nil, fmt.Errorf("squashfs: inode %#x is a %s, not a directory", dir.Ref, dir.Type)
	}
	l, err := fs.listing(dir, metaPos{block: fs.sb.dirTable + uint64(dir.dirBlock), off: dir.dirOff}, dir.listingLen())
	if err != nil {
		return nil, fmt.Errorf("directory %#x: %w", dir.Ref, err)
	}
	var out []DirEntry
	for {
		e, err := l.next()
		if err != nil {
			return nil, fmt.Errorf("directory %#x: %w", dir.Ref, err)
		}
		if e == nil {
			break
		}
		if len(out) == maxDirLen {
			return nil, fmt.Errorf("directory %#x: %w", dir.Ref, corrupt("more than %d entries", maxDirLen))
		}
		out = append(out, *e)
	}
	if !slices.IsSortedFunc(out, func(a, b DirEntry) int { return strings.Compare(a.Name, b.Name) }) {
		sorted := slices.Clone(out)
		slices.SortFunc(sorted, func(a, b DirEntry) int { return strings.Compare(a.Name, b.Name) })
		if i := dupName(sorted); i >= 0 {
			return nil, fmt.Errorf("directory %#x: %w", dir.Ref, corrupt("two entries named %q", sorted[i].Name))
		}
	} else if i := dupName(out); i >= 0 {
		return nil, fmt.Errorf("directory %#x: %w", dir.Ref, corrupt("two entries named %q", out[i].Name))
	}
	return out, nil
}

func dupName(sorted []DirEntry) int {
	for i := 1; i < len(sorted); i++ {
		if sorted[i].Name == sorted[i-1].Name {
			return i
		}
	}
	return -1
}

// listingReader parses a directory listing: headers, each followed by up to 256 entries.
type listingReader struct {
	m      *metaReader
	left   int64  // bytes of listing not read yet
	count  int    // entries left under the current header
	start  uint32 // current header: inode table block
	number uint32 // current header: base inode number
	name   [maxNameLen]byte
}

func (fs *FS) listing(dir *Inode, at metaPos, n int64) (*listingReader, error) {
	l := &listingReader{left: n}
	if n == 0 {
		return l, nil
	}
	if at.block < fs.sb.dirTable || at.block >= fs.dirEnd {
		return nil, corrupt("listing at %d lies outside the directory table", at.block)
	}
	m, err := fs.metaAt(at.block, at.off, fs.dirEnd)
	if err != nil {
		return nil, err
	}
	l.m = m
	return l, nil
}

// next returns the next entry, or nil at the end of the listing.
func (l *listingReader) next() (*DirEntry, error) {
	le := binary.LittleEndian
	var b [12]byte
	if l.count == 0 {
		if l.left == 0 {
			return nil, nil
		}
		if l.left < 12+8+1 {
			return nil, corrupt("listing ends inside a header")
		}
		if err := l.m.read(b[:12]); err != nil {
			return nil, err
		}
		l.left -= 12
		l.count = int(le.Uint32(b[:])) + 1
		l.start, l.number = le.Uint32(b[4:]), le.Uint32(b[8:])
		if l.count > maxDirCount || l.count <= 0 {
			return nil, corrupt("listing header of %d entries", le.Uint32(b[:])+1)
		}
	}
	if l.left < 8+1 {
		return nil, corrupt("listing ends inside an entry")
	}
	if err := l.m.read(b[:8]); err != nil {
		return nil, err
	}
	off, delta, typ, size := le.Uint16(b[:]), int16(le.Uint16(b[2:])), le.Uint16(b[4:]), int(le.Uint16(b[6:]))+1
	l.left -= 8
	if size > maxNameLen || int64(size) > l.left {
		return nil, corrupt("entry name of %d bytes", size)
	}
	name := l.name[:size]
	if err := l.m.read(name); err != nil {
		return nil, err
	}
	l.left -= int64(size)
	l.count--
	if off >= metaSize {
		return nil, corrupt("entry %q: inode offset %d", name, off)
	}
	if typ == 0 || typ > extended {
		return nil, corrupt("entry %q: type %d", name, typ)
	}
	if err := checkName(name); err != nil {
		return nil, err
	}
	return &DirEntry{Name: string(name), Type: Type(typ), Ref: uint64(l.start)<<16 | uint64(off),
		Number: uint32(int64(l.number) + int64(delta))}, nil
}

func checkName(name []byte) error {
	s := string(name)
	if s == "." || s == ".." || strings.ContainsAny(s, "/\x00") {
		return corrupt("entry name %q", s)
	}
	return nil
}

// entryInode reads the inode a directory entry names and checks that it is of the type the
// listing says.
func (fs *FS) entryInode(e *DirEntry) (*Inode, error) {
	in, err := fs.Inode(e.Ref)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", e.Name, err)
	}
	if in.Type != e.Type {
		return nil, fmt.Errorf("%q: %w", e.Name, corrupt("listed as a %s, the inode is a %s", e.Type, in.Type))
	}
	return in, nil
}

// Lookup finds the entry called name in directory dir, skipping ahead through the
// directory index as the kernel does. It returns an error wrapping io/fs.ErrNotExist when
// there is none.
func (fs *FS) Lookup(dir *Inode, name string) (*Inode, error) {
	if dir.Type != Dir {
		return nil, fmt.Errorf("squashfs: inode %#x is a %s, not a directory", dir.Ref, dir.Type)
	}
	at := metaPos{block: fs.sb.dirTable + uint64(dir.dirBlock), off: dir.dirOff}
	skipped, err := fs.searchIndex(dir, name, &at)
	if err != nil {
		return nil, fmt.Errorf("directory %#x: index: %w", dir.Ref, err)
	}
	if skipped > dir.listingLen() {
		return nil, fmt.Errorf("directory %#x: %w", dir.Ref, corrupt("index entry beyond the listing"))
	}
	l, err := fs.listing(dir, at, dir.listingLen()-skipped)
	if err != nil {
		return nil, fmt.Errorf("directory %#x: %w", dir.Ref, err)
	}
	for {
		e, err := l.next()
		if err != nil {
			return nil, fmt.Errorf("directory %#x: %w", dir.Ref, err)
		}
		if e == nil {
			return nil, fmt.Errorf("squashfs: %q: %w", name, iofs.ErrNotExist)
		}
		if e.Name == name {
			return fs.entryInode(e)
		}
	}
}

// searchIndex moves at to the last index entry whose name sorts at or before name and
// returns the bytes of listing skipped.
func (fs *FS) searchIndex(dir *Inode, name string, at *metaPos) (int64, error) {
	if dir.indexCount == 0 {
		return 0, nil
	}
	m, err := fs.metaAt(dir.index.block, dir.index.off, fs.sb.dirTable)
	if err != nil {
		return 0, err
	}
	var skipped int64
	var b [12]byte
	buf := make([]byte, maxNameLen)
	for range dir.indexCount {
		if err := m.read(b[:]); err != nil {
			return 0, err
		}
		le := binary.LittleEndian
		index, start, size := le.Uint32(b[:]), le.Uint32(b[4:]), int(le.Uint32(b[8:]))+1
		if size > maxNameLen || size <= 0 {
			return 0, corrupt("index name of %d bytes", le.Uint32(b[8:])+1)
		}
		if err := m.read(buf[:size]); err != nil {
			return 0, err
		}
		if string(buf[:size]) > name {
			break
		}
		skipped = int64(index)
		at.block = fs.sb.dirTable + uint64(start)
		at.off = int((uint64(index) + uint64(dir.dirOff)) % metaSize)
	}
	return skipped, nil
}

// Stat returns the inode at path p ("/a/b", "a/b", "" and "/" all work) without following
// symlinks.
func (fs *FS) Stat(p string) (*Inode, error) {
	in, err := fs.Root()
	if err != nil {
		return nil, err
	}
	for _, c := range strings.Split(p, "/") {
		if c == "" || c == "." {
			continue
		}
		if in.Type != Dir {
			return nil, fmt.Errorf("squashfs: %q: not a directory", p)
		}
		if in, err = fs.Lookup(in, c); err != nil {
			return nil, err
		}
	}
	return in, nil
}

// SkipDir, returned by a Walk callback for a directory, skips its children.
var SkipDir = iofs.SkipDir

// Walk calls fn for every inode of the tree in depth-first pre-order, children in listing
// order, with the path relative to the root ("" for the root, then "a", "a/b", ...). A
// directory inode or listing met twice (a cycle), a tree deeper than MaxDepth, or an entry
// whose inode has another type than its listing says, is an error.
func (fs *FS) Walk(fn func(path string, in *Inode) error) error {
	root, err := fs.Root()
	if err != nil {
		return err
	}
	w := walker{fs: fs, fn: fn, dirs: map[uint64]bool{}, listings: map[metaPos]bool{}}
	err = w.walk(root, "", 0)
	if errors.Is(err, SkipDir) {
		return nil
	}
	return err
}

type walker struct {
	fs       *FS
	fn       func(string, *Inode) error
	dirs     map[uint64]bool  // directory inodes seen
	listings map[metaPos]bool // non-empty listings seen
}

func (w *walker) walk(dir *Inode, p string, depth int) error {
	if w.dirs[dir.Ref] {
		return fmt.Errorf("%q: %w", p, corrupt("directory inode %#x appears twice (a cycle?)", dir.Ref))
	}
	w.dirs[dir.Ref] = true
	if dir.listingLen() > 0 {
		at := metaPos{block: uint64(dir.dirBlock), off: dir.dirOff}
		if w.listings[at] {
			return fmt.Errorf("%q: %w", p, corrupt("two directories share the listing at %d:%d", at.block, at.off))
		}
		w.listings[at] = true
	}
	if err := w.fn(p, dir); err != nil {
		return err
	}
	if depth == MaxDepth {
		return fmt.Errorf("%q: %w", p, corrupt("directories nested deeper than %d", MaxDepth))
	}
	entries, err := w.fs.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("%q: %w", p, err)
	}
	for i := range entries {
		e := &entries[i]
		kp := e.Name
		if p != "" {
			kp = p + "/" + e.Name
		}
		in, err := w.fs.entryInode(e)
		if err != nil {
			return fmt.Errorf("%q: %w", p, err)
		}
		if in.Type == Dir {
			err = w.walk(in, kp, depth+1)
		} else {
			err = w.fn(kp, in)
		}
		if err != nil && !errors.Is(err, SkipDir) {
			return err
		}
	}
	return nil
}
