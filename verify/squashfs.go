package verify

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/ocirender/ocirender/squashfs"
)

var squashfsTypes = map[squashfs.Type]Type{squashfs.Dir: Dir, squashfs.Reg: Reg, squashfs.Symlink: Symlink,
	squashfs.Char: Char, squashfs.Block: Block, squashfs.Fifo: Fifo, squashfs.Socket: Socket}

// ScanSquashfs lists the tree of a squashfs image with our own reader (no mount), sorted by
// Path, hashing every regular file's content (each inode once, in the order its data lies
// in the image) with up to workers goroutines (0 = GOMAXPROCS). Entries that name one inode
// number are one hard-link group, as the kernel sees them. Mtimes are whole seconds.
func ScanSquashfs(ctx context.Context, sq *squashfs.FS, workers int) ([]Entry, error) {
	var entries []Entry
	type file struct {
		in      *squashfs.Inode
		entries []int
		sum     string
	}
	files := map[uint32]*file{} // by inode number
	groups := map[uint32][]int{}
	err := sq.Walk(func(p string, in *squashfs.Inode) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		e := Entry{Path: p, Type: squashfsTypes[in.Type], Mode: in.Mode, UID: in.UID, GID: in.GID,
			MtimeNs: in.Mtime * 1e9}
		switch in.Type {
		case squashfs.Reg:
			e.Size = in.Size
			f := files[in.Number]
			if f == nil {
				f = &file{in: in}
				files[in.Number] = f
			}
			f.entries = append(f.entries, len(entries))
		case squashfs.Symlink:
			e.Link = in.Link
		case squashfs.Char, squashfs.Block:
			e.Devmajor, e.Devminor = in.Devmajor, in.Devminor
		}
		xs, err := sq.Xattrs(in)
		if err != nil {
			return fmt.Errorf("%q: %w", p, err)
		}
		if len(xs) > 0 {
			e.Xattrs = make(map[string]string, len(xs))
			for _, x := range xs {
				e.Xattrs[x.Name] = x.Value
			}
		}
		if in.Type != squashfs.Dir {
			groups[in.Number] = append(groups[in.Number], len(entries))
		}
		entries = append(entries, e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("verify: squashfs: %w", err)
	}
	nameLinkGroups(groups, func(i int) *Entry { return &entries[i] })

	list := make([]*file, 0, len(files))
	for _, f := range files {
		list = append(list, f)
	}
	slices.SortFunc(list, func(a, b *file) int {
		return cmp.Or(cmp.Compare(a.in.DiskOrder(), b.in.DiskOrder()), cmp.Compare(a.in.Number, b.in.Number))
	})
	jobs := make([]hashJob, len(list))
	for k, f := range list {
		jobs[k] = hashJob{size: f.in.Size, sum: &f.sum,
			what: func() string { return strconv.Quote(entries[f.entries[0]].Path) },
			open: func() (io.Reader, error) { return sq.OpenFile(f.in) }}
	}
	if err := hashAll(ctx, jobs, workers); err != nil {
		return nil, fmt.Errorf("verify: squashfs: %w", err)
	}
	for _, f := range list {
		for _, i := range f.entries {
			entries[i].Digest = f.sum
		}
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Path < entries[j].Path })
	return entries, nil
}

// SquashfsXattr reports whether squashfs can hold an xattr of this name: only the user.,
// trusted. and security. namespaces.
func SquashfsXattr(name string) bool {
	return strings.HasPrefix(name, "user.") || strings.HasPrefix(name, "trusted.") ||
		strings.HasPrefix(name, "security.")
}

// Squashed returns a copy of entries as a squashfs image can hold them: mtimes truncated to
// whole seconds and clamped to 1970..2106 (unsigned 32-bit seconds), and only the xattrs
// SquashfsXattr accepts. It is what an exact squashfs of the tree must show.
func Squashed(entries []Entry) []Entry {
	out := make([]Entry, len(entries))
	for i, e := range entries {
		sec := e.MtimeNs / 1e9
		if e.MtimeNs%1e9 < 0 {
			sec--
		}
		e.MtimeNs = min(max(sec, 0), math.MaxUint32) * 1e9
		if e.Xattrs != nil {
			x := make(map[string]string, len(e.Xattrs))
			for k, v := range e.Xattrs {
				if SquashfsXattr(k) {
					x[k] = v
				}
			}
			e.Xattrs = x
			if len(x) == 0 {
				e.Xattrs = nil
			}
		}
		out[i] = e
	}
	return out
}
