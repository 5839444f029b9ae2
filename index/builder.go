package index

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
)

// Builder assembles an Index. Add inodes, then entries (the root first, every parent before
// its children), then call Finish. A Builder is not safe for concurrent use.
type Builder struct {
	ix     Index
	xsetID map[string]uint32
	err    error
}

// NewBuilder returns a Builder with room for about n entries.
func NewBuilder(n int) *Builder {
	b := &Builder{xsetID: map[string]uint32{}}
	b.ix.entries = make([]entryRec, 0, n)
	b.ix.inodes = make([]inodeRec, 0, n)
	b.ix.xsets = [][]Xattr{nil}
	return b
}

// ErrTooLarge is returned when the index would overflow its 32-bit tables.
var ErrTooLarge = errors.New("index: too many entries or too much name data")

func (b *Builder) addString(s string) strRef {
	if len(b.ix.strs)+len(s) > math.MaxUint32 {
		b.err = ErrTooLarge
		return strRef{}
	}
	r := strRef{off: uint32(len(b.ix.strs)), len: uint32(len(s))}
	b.ix.strs = append(b.ix.strs, s...)
	return r
}

func (b *Builder) internXattrs(xs []Xattr) uint32 {
	if len(xs) == 0 {
		return 0
	}
	set := xs
	cmp := func(a, b Xattr) int { return strings.Compare(a.Name, b.Name) }
	if !slices.IsSortedFunc(set, cmp) {
		set = slices.Clone(xs)
		slices.SortFunc(set, cmp)
	}
	var key strings.Builder
	for _, x := range set {
		fmt.Fprintf(&key, "%d:%s%d:%s", len(x.Name), x.Name, len(x.Value), x.Value)
	}
	if id, ok := b.xsetID[key.String()]; ok {
		return id
	}
	set = slices.Clone(set)
	id := uint32(len(b.ix.xsets))
	b.ix.xsets = append(b.ix.xsets, set)
	b.xsetID[key.String()] = id
	return id
}

// AddInode records an inode and returns its id. Nlink is computed by Finish.
func (b *Builder) AddInode(in Inode) InodeID {
	if len(b.ix.inodes) >= math.MaxUint32-1 {
		b.err = ErrTooLarge
		return 0
	}
	r := inodeRec{
		mtime:    in.Mtime,
		size:     in.Size,
		offset:   in.Offset,
		uid:      in.UID,
		gid:      in.GID,
		mode:     in.Mode & 07777,
		devmajor: in.Devmajor,
		devminor: in.Devminor,
		xattrs:   b.internXattrs(in.Xattrs),
		layer:    int32(in.Layer),
		typ:      in.Type,
	}
	if in.Link != "" {
		r.link = b.addString(in.Link)
	}
	b.ix.inodes = append(b.ix.inodes, r)
	return InodeID(len(b.ix.inodes) - 1)
}

// AddEntry records the name name in directory parent for inode ino and returns its id. The
// root is added first, with parent NoParent and an empty name.
func (b *Builder) AddEntry(parent ID, name string, ino InodeID) ID {
	if len(b.ix.entries) >= math.MaxUint32-1 {
		b.err = ErrTooLarge
		return 0
	}
	if b.err == nil {
		switch {
		case len(b.ix.entries) == 0 && parent != NoParent:
			b.err = errors.New("index: the first entry must be the root")
		case len(b.ix.entries) > 0 && (parent == NoParent || int(parent) >= len(b.ix.entries)):
			b.err = fmt.Errorf("index: entry %q added before its parent", name)
		case int(ino) >= len(b.ix.inodes):
			b.err = fmt.Errorf("index: entry %q names unknown inode %d", name, ino)
		}
	}
	b.ix.entries = append(b.ix.entries, entryRec{name: b.addString(name), parent: parent, ino: ino})
	return ID(len(b.ix.entries) - 1)
}

// Finish sorts every directory's children, counts links and returns the index.
func (b *Builder) Finish() (*Index, error) {
	if b.err != nil {
		return nil, b.err
	}
	ix := &b.ix
	if len(ix.entries) == 0 {
		return nil, errors.New("index: no root entry")
	}
	if ix.inodes[ix.entries[0].ino].typ != Dir {
		return nil, errors.New("index: root is not a directory")
	}
	// Count children per directory, then lay them out contiguously (a counting sort by parent).
	for i := 1; i < len(ix.entries); i++ {
		p := ix.entries[i].parent
		if ix.inodes[ix.entries[p].ino].typ != Dir {
			return nil, fmt.Errorf("index: parent of %q is not a directory", ix.Name(ID(i)))
		}
		ix.entries[p].nkids++
	}
	var next uint32
	for i := range ix.entries {
		ix.entries[i].kids = next
		next += ix.entries[i].nkids
		ix.entries[i].nkids = 0
	}
	ix.kids = make([]ID, len(ix.entries)-1)
	for i := 1; i < len(ix.entries); i++ {
		p := &ix.entries[ix.entries[i].parent]
		ix.kids[p.kids+p.nkids] = ID(i)
		p.nkids++
	}
	for i := range ix.entries {
		kids := ix.Children(ID(i))
		cmp := func(a, b ID) int { return strings.Compare(ix.Name(a), ix.Name(b)) }
		if !slices.IsSortedFunc(kids, cmp) {
			slices.SortFunc(kids, cmp)
		}
		for j := 1; j < len(kids); j++ {
			if ix.Name(kids[j]) == ix.Name(kids[j-1]) {
				return nil, fmt.Errorf("index: duplicate entry %q", ix.Path(kids[j]))
			}
		}
	}
	ix.countLinks()
	b.xsetID = nil
	out := *ix
	b.ix = Index{}
	return &out, nil
}
