package squashfs_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"path"
	"sort"
	"strings"
	"testing"

	"github.com/ocirender/ocirender/export"
	"github.com/ocirender/ocirender/index"
	"github.com/ocirender/ocirender/verify"
)

// node is one entry of a tree built in code. Parents come before their children.
type node struct {
	path    string
	typ     index.Type
	mode    uint32
	uid     uint32
	gid     uint32
	mtime   int64 // ns; 0 = epoch1
	body    []byte
	zeros   int64 // a regular file of this many zero bytes (read from the zero layer)
	link    string
	major   uint32
	minor   uint32
	xattrs  []index.Xattr
	hardlnk string // another name of this earlier path
}

const epoch1 = 1700000000_123456789

func dirN(p string) node               { return node{path: p, typ: index.Dir, mode: 0o755} }
func regN(p, body string) node         { return node{path: p, typ: index.Reg, mode: 0o644, body: []byte(body)} }
func symN(p, target string) node       { return node{path: p, typ: index.Symlink, mode: 0o777, link: target} }
func hardN(p, target string) node      { return node{path: p, hardlnk: target} }
func (n node) with(f func(*node)) node { f(&n); return n }

// zeroLayer reads as zeros everywhere.
type zeroLayer struct{}

func (zeroLayer) ReadAt(p []byte, off int64) (int, error) {
	clear(p)
	return len(p), nil
}

// build makes an index of nodes (the root is implicit unless given as "") and the layers that
// hold their content: layer 0 the bodies, layer 1 endless zeros.
func build(t testing.TB, nodes ...node) (*index.Index, export.Layers) {
	t.Helper()
	b := index.NewBuilder(len(nodes) + 1)
	var content bytes.Buffer
	ids := map[string]index.ID{}
	inos := map[string]index.InodeID{}
	if len(nodes) == 0 || nodes[0].path != "" {
		nodes = append([]node{dirN("")}, nodes...)
	}
	for _, n := range nodes {
		var ino index.InodeID
		if n.hardlnk != "" {
			ino = inos[n.hardlnk]
		} else {
			in := index.Inode{Type: n.typ, Mode: n.mode, UID: n.uid, GID: n.gid, Mtime: n.mtime,
				Link: n.link, Devmajor: n.major, Devminor: n.minor, Xattrs: n.xattrs, Layer: index.NoLayer}
			if in.Mtime == 0 {
				in.Mtime = epoch1
			}
			switch {
			case n.typ == index.Reg && n.zeros > 0:
				in.Layer, in.Size = 1, n.zeros
			case n.typ == index.Reg:
				in.Layer, in.Offset, in.Size = 0, int64(content.Len()), int64(len(n.body))
				content.Write(n.body)
			case n.typ == index.Symlink:
				in.Size = int64(len(n.link))
			}
			ino = b.AddInode(in)
		}
		inos[n.path] = ino
		if n.path == "" {
			ids[""] = b.AddEntry(index.NoParent, "", ino)
			continue
		}
		dir, name := path.Split(n.path)
		ids[n.path] = b.AddEntry(ids[strings.TrimSuffix(dir, "/")], name, ino)
	}
	ix, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return ix, export.Layers{bytes.NewReader(content.Bytes()), zeroLayer{}}
}

// expect is the tree a reader of the image must show: the index with mtimes in whole seconds,
// symlinks 0777 and only the xattr namespaces squashfs holds.
func expect(t testing.TB, ix *index.Index, layers export.Layers) []verify.Entry {
	t.Helper()
	types := map[index.Type]verify.Type{index.Dir: verify.Dir, index.Reg: verify.Reg,
		index.Symlink: verify.Symlink, index.Char: verify.Char, index.Block: verify.Block,
		index.Fifo: verify.Fifo, index.Socket: verify.Socket}
	var out []verify.Entry
	groups := map[index.InodeID][]int{}
	ix.Walk(index.Root, func(id index.ID, p string) error {
		e := ix.Entry(id)
		v := verify.Entry{Path: p, Type: types[e.Type], Mode: e.Mode, UID: e.UID, GID: e.GID,
			MtimeNs: e.Mtime / 1e9 * 1e9, Link: e.Link}
		switch e.Type {
		case index.Symlink:
			v.Mode = 0o777
		case index.Reg:
			v.Size = e.Size
			h := sha256.New()
			if e.Size > 0 {
				if _, err := io.Copy(h, io.NewSectionReader(layers[e.Layer], e.Offset, e.Size)); err != nil {
					t.Fatal(err)
				}
			}
			v.Digest = hex.EncodeToString(h.Sum(nil))
		case index.Char, index.Block:
			v.Devmajor, v.Devminor = e.Devmajor, e.Devminor
		}
		for _, x := range e.Xattrs {
			if strings.HasPrefix(x.Name, "user.") || strings.HasPrefix(x.Name, "trusted.") ||
				strings.HasPrefix(x.Name, "security.") {
				if v.Xattrs == nil {
					v.Xattrs = map[string]string{}
				}
				v.Xattrs[x.Name] = x.Value
			}
		}
		if e.Type != index.Dir && e.Nlink > 1 {
			groups[e.Ino] = append(groups[e.Ino], len(out))
		}
		out = append(out, v)
		return nil
	})
	for _, g := range groups {
		first := out[g[0]].Path
		for _, i := range g {
			first = min(first, out[i].Path)
		}
		for _, i := range g {
			out[i].Inode = first
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}
