// Package treetest builds merged trees in code for the tests of the squashfs writer and
// reader: an index of nodes and the layers that hold their content, and what an exact
// squashfs of it must show.
package treetest

import (
	"bytes"
	"context"
	"path"
	"strings"
	"testing"

	"github.com/ocirender/ocirender/export"
	"github.com/ocirender/ocirender/index"
	"github.com/ocirender/ocirender/verify"
)

// Node is one entry of a tree built in code. Parents come before their children.
type Node struct {
	Path         string
	Type         index.Type
	Mode         uint32
	UID, GID     uint32
	Mtime        int64 // ns; 0 = Epoch
	Body         []byte
	Zeros        int64 // a regular file of this many zero bytes (read from the zero layer)
	Link         string
	Major, Minor uint32
	Xattrs       []index.Xattr
	Hardlink     string // another name of this earlier path
}

// Epoch is the mtime of nodes that set none.
const Epoch = 1700000000_123456789

func Dir(p string) Node                { return Node{Path: p, Type: index.Dir, Mode: 0o755} }
func Reg(p, body string) Node          { return Node{Path: p, Type: index.Reg, Mode: 0o644, Body: []byte(body)} }
func Sym(p, target string) Node        { return Node{Path: p, Type: index.Symlink, Mode: 0o777, Link: target} }
func Hard(p, target string) Node       { return Node{Path: p, Hardlink: target} }
func (n Node) With(f func(*Node)) Node { f(&n); return n }

// zeroLayer reads as zeros everywhere.
type zeroLayer struct{}

func (zeroLayer) ReadAt(p []byte, off int64) (int, error) {
	clear(p)
	return len(p), nil
}

// Build makes an index of nodes (the root is implicit unless given as "") and the layers
// that hold their content: layer 0 the bodies, layer 1 endless zeros.
func Build(t testing.TB, nodes ...Node) (*index.Index, export.Layers) {
	t.Helper()
	b := index.NewBuilder(len(nodes) + 1)
	var content bytes.Buffer
	ids := map[string]index.ID{}
	inos := map[string]index.InodeID{}
	if len(nodes) == 0 || nodes[0].Path != "" {
		nodes = append([]Node{Dir("")}, nodes...)
	}
	for _, n := range nodes {
		var ino index.InodeID
		if n.Hardlink != "" {
			ino = inos[n.Hardlink]
		} else {
			in := index.Inode{Type: n.Type, Mode: n.Mode, UID: n.UID, GID: n.GID, Mtime: n.Mtime,
				Link: n.Link, Devmajor: n.Major, Devminor: n.Minor, Xattrs: n.Xattrs, Layer: index.NoLayer}
			if in.Mtime == 0 {
				in.Mtime = Epoch
			}
			switch {
			case n.Type == index.Reg && n.Zeros > 0:
				in.Layer, in.Size = 1, n.Zeros
			case n.Type == index.Reg:
				in.Layer, in.Offset, in.Size = 0, int64(content.Len()), int64(len(n.Body))
				content.Write(n.Body)
			case n.Type == index.Symlink:
				in.Size = int64(len(n.Link))
			}
			ino = b.AddInode(in)
		}
		inos[n.Path] = ino
		if n.Path == "" {
			ids[""] = b.AddEntry(index.NoParent, "", ino)
			continue
		}
		dir, name := path.Split(n.Path)
		ids[n.Path] = b.AddEntry(ids[strings.TrimSuffix(dir, "/")], name, ino)
	}
	ix, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return ix, export.Layers{bytes.NewReader(content.Bytes()), zeroLayer{}}
}

// SquashfsWant is the tree a reader of an exact squashfs of ix must show: the index with
// mtimes in whole seconds, symlinks 0777 and only the xattr namespaces squashfs holds.
func SquashfsWant(t testing.TB, ix *index.Index, layers export.Layers) []verify.Entry {
	t.Helper()
	want, err := verify.FromIndex(context.Background(), ix, verify.IndexOptions{Layers: layers})
	if err != nil {
		t.Fatal(err)
	}
	return verify.Squashed(want)
}

// UndoSquashfuseXattrSwap undoes what squashfuse 0.1.104 gets wrong with every squashfs
// (mksquashfs's too): it shows trusted.* xattrs as security.* and back. (It also gives every
// name of a hard link its own inode, which callers leave to other judges.)
func UndoSquashfuseXattrSwap(entries []verify.Entry) {
	for i := range entries {
		if entries[i].Xattrs == nil {
			continue
		}
		x := map[string]string{}
		for k, v := range entries[i].Xattrs {
			if rest, ok := strings.CutPrefix(k, "trusted."); ok {
				k = "security." + rest
			} else if rest, ok := strings.CutPrefix(k, "security."); ok {
				k = "trusted." + rest
			}
			x[k] = v
		}
		entries[i].Xattrs = x
	}
}
