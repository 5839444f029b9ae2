package verify

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"sort"

	"github.com/ocirender/ocirender/index"
)

// IndexOptions tune FromIndex. The zero value lists every entry without reading content.
type IndexOptions struct {
	// Layers are the uncompressed streams of the image's layers (ocirender.Image.Content).
	// With them, regular files get their Digest; without, Digest stays "".
	Layers index.Content
	// Workers bounds the goroutines hashing content; 0 = GOMAXPROCS.
	Workers int
}

var indexTypes = map[index.Type]Type{index.Dir: Dir, index.Reg: Reg, index.Symlink: Symlink,
	index.Char: Char, index.Block: Block, index.Fifo: Fifo, index.Socket: Socket}

// FromIndex lists the merged tree of an index as entries, sorted by Path: what every
// output of the image must hold. Symlinks are listed with mode 0777, as Linux shows every
// symlink; the mode a layer gave one is not compared (no output can keep it but a tar).
// Content is read with opts.Layers, each inode once, in layer and offset order.
func FromIndex(ctx context.Context, ix *index.Index, opts IndexOptions) ([]Entry, error) {
	entries, inodes, err := indexEntries(ix)
	if err != nil {
		return nil, err
	}
	if opts.Layers != nil {
		if err := hashIndex(ctx, ix, entries, inodes, opts); err != nil {
			return nil, err
		}
	}
	return entries, nil
}

// indexEntries lists the entries of ix sorted by Path, and the inode of each.
func indexEntries(ix *index.Index) ([]Entry, []index.InodeID, error) {
	type row struct {
		e   Entry
		ino index.InodeID
	}
	rows := make([]row, 0, ix.Len())
	groups := map[index.InodeID][]int{}
	err := ix.Walk(index.Root, func(id index.ID, p string) error {
		e := ix.Entry(id)
		t, ok := indexTypes[e.Type]
		if !ok {
			return fmt.Errorf("verify: %s: unknown type %s", p, e.Type)
		}
		v := Entry{Path: p, Type: t, Mode: e.Mode & 07777, UID: e.UID, GID: e.GID, MtimeNs: e.Mtime}
		switch e.Type {
		case index.Reg:
			v.Size = e.Size
		case index.Symlink:
			v.Mode, v.Link = 0o777, e.Link
		case index.Char, index.Block:
			v.Devmajor, v.Devminor = e.Devmajor, e.Devminor
		}
		if len(e.Xattrs) > 0 {
			v.Xattrs = make(map[string]string, len(e.Xattrs))
			for _, x := range e.Xattrs {
				v.Xattrs[x.Name] = x.Value
			}
		}
		if e.Type != index.Dir && e.Nlink > 1 {
			groups[e.Ino] = append(groups[e.Ino], len(rows))
		}
		rows = append(rows, row{v, e.Ino})
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	nameLinkGroups(groups, func(i int) *Entry { return &rows[i].e })
	sort.Slice(rows, func(i, j int) bool { return rows[i].e.Path < rows[j].e.Path })
	entries := make([]Entry, len(rows))
	inodes := make([]index.InodeID, len(rows))
	for i, r := range rows {
		entries[i], inodes[i] = r.e, r.ino
	}
	return entries, inodes, nil
}

// contentJob is one inode whose content is hashed, and the entries that name it.
type contentJob struct {
	in      index.Inode
	entries []int
	sum     string
}

// hashIndex sets the Digest of the regular entries with the given indexes (all when only
// is nil), reading each inode once.
func hashIndex(ctx context.Context, ix *index.Index, entries []Entry, inodes []index.InodeID, opts IndexOptions) error {
	return hashIndexOnly(ctx, ix, entries, inodes, nil, opts)
}

func hashIndexOnly(ctx context.Context, ix *index.Index, entries []Entry, inodes []index.InodeID, only []int, opts IndexOptions) error {
	byIno := map[index.InodeID]*contentJob{}
	var list []*contentJob
	add := func(i int) {
		if entries[i].Type != Reg {
			return
		}
		j := byIno[inodes[i]]
		if j == nil {
			j = &contentJob{in: ix.Inode(inodes[i])}
			byIno[inodes[i]] = j
			list = append(list, j)
		}
		j.entries = append(j.entries, i)
	}
	if only == nil {
		for i := range entries {
			add(i)
		}
	} else {
		for _, i := range only {
			add(i)
		}
	}
	slices.SortFunc(list, func(a, b *contentJob) int {
		return cmp.Or(cmp.Compare(a.in.Layer, b.in.Layer), cmp.Compare(a.in.Offset, b.in.Offset))
	})
	jobs := make([]hashJob, len(list))
	for k, j := range list {
		jobs[k] = hashJob{size: j.in.Size, sum: &j.sum,
			what: func() string { return fmt.Sprintf("verify: %s: layer %d", entries[j.entries[0]].Path, j.in.Layer) },
			open: func() (io.Reader, error) {
				return index.Content(opts.Layers).File(&j.in)
			}}
	}
	if err := hashAll(ctx, jobs, opts.Workers); err != nil {
		return err
	}
	for _, j := range list {
		for _, i := range j.entries {
			entries[i].Digest = j.sum
		}
	}
	return nil
}
