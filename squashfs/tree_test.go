package squashfs_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	sqfswriter "github.com/ocirender/ocirender/export/squashfs"
	"github.com/ocirender/ocirender/index"
	"github.com/ocirender/ocirender/squashfs"
	"github.com/ocirender/ocirender/verify"
)

// node is one entry of a tree built in code; parents come before their children.
type node struct {
	path     string
	typ      index.Type
	mode     uint32
	uid, gid uint32
	mtime    int64 // ns; 0 = epoch
	body     []byte
	zeros    int64 // a regular file of this many zeros
	link     string
	major    uint32
	minor    uint32
	xattrs   []index.Xattr
	hardlink string // another name of this earlier path
}

const epoch = 1700000000_123456789

func dirN(p string) node         { return node{path: p, typ: index.Dir, mode: 0o755} }
func regN(p, body string) node   { return node{path: p, typ: index.Reg, mode: 0o644, body: []byte(body)} }
func symN(p, target string) node { return node{path: p, typ: index.Symlink, mode: 0o777, link: target} }
func hardN(p, target string) node {
	return node{path: p, hardlink: target}
}
func (n node) with(f func(*node)) node { f(&n); return n }

// zeroLayer reads as zeros everywhere.
type zeroLayer struct{}

func (zeroLayer) ReadAt(p []byte, off int64) (int, error) {
	clear(p)
	return len(p), nil
}

// build makes an index of nodes (the root is implicit unless given as "") and its layers:
// layer 0 holds the bodies, layer 1 is endless zeros.
func build(t testing.TB, nodes ...node) (*index.Index, []io.ReaderAt) {
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
		if n.hardlink != "" {
			ino = inos[n.hardlink]
		} else {
			in := index.Inode{Type: n.typ, Mode: n.mode, UID: n.uid, GID: n.gid, Mtime: n.mtime,
				Link: n.link, Devmajor: n.major, Devminor: n.minor, Xattrs: n.xattrs, Layer: index.NoLayer}
			if in.Mtime == 0 {
				in.Mtime = epoch
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
	return ix, []io.ReaderAt{bytes.NewReader(content.Bytes()), zeroLayer{}}
}

// writeImage writes ix with our writer and returns the image's bytes.
func writeImage(t testing.TB, ix *index.Index, layers []io.ReaderAt, opts sqfswriter.Options) []byte {
	t.Helper()
	p := filepath.Join(t.TempDir(), "img.sqfs")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := sqfswriter.Write(context.Background(), f, ix, layers, opts); err != nil {
		t.Fatalf("Write: %v", err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// expect is what a reader of our image of ix must show.
func expect(t testing.TB, ix *index.Index, layers []io.ReaderAt) []verify.Entry {
	t.Helper()
	want, err := verify.FromIndex(context.Background(), ix, verify.IndexOptions{Layers: layers})
	if err != nil {
		t.Fatal(err)
	}
	return verify.Squashed(want)
}

var types = map[squashfs.Type]verify.Type{squashfs.Dir: verify.Dir, squashfs.Reg: verify.Reg,
	squashfs.Symlink: verify.Symlink, squashfs.Char: verify.Char, squashfs.Block: verify.Block,
	squashfs.Fifo: verify.Fifo, squashfs.Socket: verify.Socket}

// readTree lists an image through the reader's API: Walk, Xattrs and OpenFile, reading each
// file once with Read and checking a few ReadAt calls against it.
func readTree(t testing.TB, sq *squashfs.FS) []verify.Entry {
	t.Helper()
	var out []verify.Entry
	groups := map[uint32][]int{}
	rnd := rand.New(rand.NewPCG(1, 2))
	err := sq.Walk(func(p string, in *squashfs.Inode) error {
		e := verify.Entry{Path: p, Type: types[in.Type], Mode: in.Mode, UID: in.UID, GID: in.GID,
			MtimeNs: in.Mtime * 1e9, Link: in.Link}
		switch in.Type {
		case squashfs.Reg:
			f, err := sq.OpenFile(in)
			if err != nil {
				return err
			}
			content, err := io.ReadAll(f)
			if err != nil {
				return fmt.Errorf("%s: Read: %w", p, err)
			}
			if int64(len(content)) != in.Size || f.Size() != in.Size {
				return fmt.Errorf("%s: read %d bytes, size %d", p, len(content), in.Size)
			}
			for range 3 {
				if len(content) == 0 {
					break
				}
				off := rnd.IntN(len(content))
				n := min(rnd.IntN(3*sq.BlockSize()), len(content)-off)
				b := make([]byte, n)
				if k, err := f.ReadAt(b, int64(off)); k != n || (err != nil && err != io.EOF) || !bytes.Equal(b, content[off:off+n]) {
					return fmt.Errorf("%s: ReadAt(%d bytes, %d) = %d, %v; differs from Read", p, n, off, k, err)
				}
			}
			var viaWriteTo bytes.Buffer
			g, err := sq.OpenFile(in)
			if err != nil {
				return err
			}
			if n, err := g.WriteTo(&viaWriteTo); err != nil || n != in.Size || !bytes.Equal(viaWriteTo.Bytes(), content) {
				return fmt.Errorf("%s: WriteTo = %d, %v; differs from Read", p, n, err)
			}
			if _, err := f.ReadAt(make([]byte, 1), in.Size); err != io.EOF {
				return fmt.Errorf("%s: ReadAt at the end = %v, want io.EOF", p, err)
			}
			sum := sha256.Sum256(content)
			e.Size, e.Digest = in.Size, hex.EncodeToString(sum[:])
		case squashfs.Char, squashfs.Block:
			e.Devmajor, e.Devminor = in.Devmajor, in.Devminor
		}
		xs, err := sq.Xattrs(in)
		if err != nil {
			return err
		}
		if len(xs) > 0 != in.HasXattrs() {
			return fmt.Errorf("%s: %d xattrs, HasXattrs %v", p, len(xs), in.HasXattrs())
		}
		for _, x := range xs {
			if e.Xattrs == nil {
				e.Xattrs = map[string]string{}
			}
			e.Xattrs[x.Name] = x.Value
		}
		if in.Type != squashfs.Dir {
			groups[in.Number] = append(groups[in.Number], len(out))
		}
		out = append(out, e)
		return nil
	})
	if err != nil {
		t.Fatalf("Walk: %v", err)
	}
	for _, g := range groups {
		if len(g) < 2 {
			continue
		}
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

func open(t testing.TB, img []byte) *squashfs.FS {
	t.Helper()
	sq, err := squashfs.Open(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return sq
}

// same fails the test with the differences between want and got.
func same(t testing.TB, who string, want, got []verify.Entry) {
	t.Helper()
	diffs := verify.Compare(want, got, verify.Options{})
	if len(diffs) == 0 {
		return
	}
	var lines []string
	for i, d := range diffs {
		if i == 20 {
			lines = append(lines, fmt.Sprintf("... and %d more", len(diffs)-20))
			break
		}
		lines = append(lines, d.String())
	}
	t.Errorf("%s: the reader's tree differs (want = source, got = reader):\n%s", who, strings.Join(lines, "\n"))
}

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

var capability = "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"

// everyType has one of everything squashfs holds, for block size bs.
func everyType(bs int) []node {
	shared := strings.Repeat("shared value ", 5) // long enough to be stored out of line once seen
	text := strings.Repeat("squashfs lorem ipsum ", 20000)
	return []node{
		dirN("dir").with(func(n *node) { n.mode = 0o1777; n.xattrs = []index.Xattr{{Name: "user.dir", Value: shared}} }),
		dirN("dir/empty"),
		regN("dir/empty-file", ""),
		regN("dir/small", "hello\n").with(func(n *node) { n.mtime = 1700000000_999999999 }),
		{path: "dir/bs-1", typ: index.Reg, mode: 0o600, body: randomBytes(1, bs-1)},
		{path: "dir/bs", typ: index.Reg, mode: 0o600, body: randomBytes(2, bs)},
		{path: "dir/bs+1", typ: index.Reg, mode: 0o600, body: randomBytes(3, bs+1)},
		{path: "dir/text", typ: index.Reg, mode: 0o644, body: []byte(text)},
		{path: "dir/text-copy", typ: index.Reg, mode: 0o644, body: []byte(text)},
		{path: "dir/holes", typ: index.Reg, mode: 0o644, body: append(append(randomBytes(4, 100), make([]byte, 3*bs)...), "end"...)},
		{path: "dir/zeros", typ: index.Reg, mode: 0o644, zeros: 5*int64(bs) + 7},
		regN("dir/setuid", "#!/bin/true\n").with(func(n *node) {
			n.mode = 0o4755
			n.xattrs = []index.Xattr{{Name: "security.capability", Value: capability}}
		}),
		regN("dir/setgid", "#!/bin/false\n").with(func(n *node) {
			n.mode = 0o2755
			n.xattrs = []index.Xattr{{Name: "security.capability", Value: capability},
				{Name: "trusted.overlay", Value: shared}, {Name: "user.x", Value: shared}, {Name: "user.empty", Value: ""}}
		}),
		hardN("dir/setuid-link", "dir/setuid"),
		hardN("hard-at-root", "dir/setuid"),
		regN("owned", "big ids").with(func(n *node) { n.uid, n.gid = 70000, 4294967294 }),
		symN("link", "dir/small"),
		symN("long-link", strings.Repeat("a/", 2047)+"z"),
		symN("xlink", "nowhere").with(func(n *node) { n.xattrs = []index.Xattr{{Name: "trusted.t", Value: "v"}} }),
		hardN("link2", "link"),
		{path: "dev-null", typ: index.Char, mode: 0o666, major: 1, minor: 3},
		{path: "dev-null-x", typ: index.Char, mode: 0o666, major: 1, minor: 3, xattrs: []index.Xattr{{Name: "user.c", Value: "1"}}},
		{path: "fifo-x", typ: index.Fifo, mode: 0o644, xattrs: []index.Xattr{{Name: "user.f", Value: "1"}}},
		{path: "socket-basic", typ: index.Socket, mode: 0o755},
		{path: "blk-basic", typ: index.Block, mode: 0o660, major: 7, minor: 1},
		{path: "dev-big", typ: index.Char, mode: 0o600, major: 4095, minor: 0xfffff},
		{path: "dev-blk", typ: index.Block, mode: 0o660, major: 8, minor: 0x12345, uid: 6, gid: 6,
			xattrs: []index.Xattr{{Name: "user.b", Value: "1"}}},
		{path: "fifo", typ: index.Fifo, mode: 0o644},
		hardN("fifo2", "fifo"),
		{path: "socket", typ: index.Socket, mode: 0o755, xattrs: []index.Xattr{{Name: "trusted.s", Value: shared}}},
		{path: "old", typ: index.Reg, mode: 0o644, body: []byte("1969"), mtime: -1},
		{path: "odd\nname\xff", typ: index.Reg, mode: 0o644, body: []byte("odd")},
		dirN(strings.Repeat("n", 255)),
		regN(strings.Repeat("n", 255)+"/"+strings.Repeat("m", 255), "long names"),
	}
}

// bigDirs has directories around the 256-entry header limit and one whose listing spans
// many metadata blocks (a directory index).
func bigDirs(n int) []node {
	nodes := []node{dirN("d256"), dirN("d257"), dirN("big")}
	for i := range 256 {
		nodes = append(nodes, regN(fmt.Sprintf("d256/f%03d", i), ""))
	}
	for i := range 257 {
		nodes = append(nodes, symN(fmt.Sprintf("d257/%03d", i), "t"))
	}
	for i := range n {
		nodes = append(nodes, regN(bigName(i), fmt.Sprint(i%1000)))
	}
	return nodes
}

func bigName(i int) string { return fmt.Sprintf("big/%s-%06d", strings.Repeat("x", i%40), i) }

func TestOurWriter(t *testing.T) {
	for _, comp := range []string{sqfswriter.Zstd, sqfswriter.Gzip, sqfswriter.XZ, sqfswriter.LZ4} {
		for _, bs := range []int{4096, sqfswriter.DefaultBlockSize} {
			t.Run(fmt.Sprintf("%s/%d", comp, bs), func(t *testing.T) {
				n := 3000
				if testing.Short() {
					n = 600 // still a listing of several metadata blocks, with an index
				}
				nodes := append(everyType(bs), bigDirs(n)...)
				ix, layers := build(t, nodes...)
				img := writeImage(t, ix, layers, sqfswriter.Options{Compression: comp, BlockSize: bs, Exportable: bs == 4096})
				sq := open(t, img)
				if sq.BlockSize() != bs || sq.Compression() != comp {
					t.Errorf("BlockSize, Compression = %d, %s; want %d, %s", sq.BlockSize(), sq.Compression(), bs, comp)
				}
				want := expect(t, ix, layers)
				same(t, "our writer", want, readTree(t, sq))
				statAll(t, sq, want)
				// Every inode type, in its basic and its extended form.
				forms := map[string]bool{}
				check(t, sq.Walk(func(_ string, in *squashfs.Inode) error {
					forms[fmt.Sprint(in.Type, in.Extended)] = true
					return nil
				}))
				if len(forms) != 14 {
					t.Errorf("the image holds %d of the 14 inode forms: %v", len(forms), forms)
				}
			})
		}
	}
}

func TestEmptyRoot(t *testing.T) {
	ix, layers := build(t)
	sq := open(t, writeImage(t, ix, layers, sqfswriter.Options{}))
	same(t, "empty root", expect(t, ix, layers), readTree(t, sq))
}

func TestLookup(t *testing.T) {
	const n = 5000
	ix, layers := build(t, bigDirs(n)...)
	sq := open(t, writeImage(t, ix, layers, sqfswriter.Options{}))
	for i := range n {
		p := bigName(i)
		in, err := sq.Stat(p)
		if err != nil {
			t.Fatalf("Stat(%q): %v", p, err)
		}
		f, err := sq.OpenFile(in)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(f)
		if err != nil || string(b) != fmt.Sprint(i%1000) {
			t.Fatalf("content of %s = %q, %v; want %q", p, b, err, fmt.Sprint(i%1000))
		}
	}
	for _, p := range []string{"big/a", "big/zzz", "big/x-000000x", "d256/f256", "d257/", "/d257/256"} {
		in, err := sq.Stat(p)
		if p == "d257/" || p == "/d257/256" {
			if err != nil || (in.Type != squashfs.Dir && in.Type != squashfs.Symlink) {
				t.Errorf("Stat(%q) = %v, %v; want it found", p, in, err)
			}
			continue
		}
		if !errors.Is(err, os.ErrNotExist) {
			t.Errorf("Stat(%q) = %v, want not exist", p, err)
		}
	}
	if _, err := sq.Stat("d257/000/x"); err == nil {
		t.Errorf("Stat through a symlink = nil error, want not a directory")
	}
}

func open2(img []byte) (*squashfs.FS, error) {
	return squashfs.Open(bytes.NewReader(img), int64(len(img)))
}

// statAll looks every path up with Stat (through the directory indexes) and requires the
// type the walk found.
func statAll(t testing.TB, sq *squashfs.FS, want []verify.Entry) {
	t.Helper()
	for _, e := range want {
		in, err := sq.Stat(e.Path)
		if err != nil {
			t.Errorf("Stat(%q): %v", e.Path, err)
			continue
		}
		if types[in.Type] != e.Type {
			t.Errorf("Stat(%q) = a %s, want a %s", e.Path, in.Type, e.Type)
		}
	}
}

func check(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestLZ4Options: an lz4 image needs its options block, version 1, as the kernel does; the
// flags (high compression or not) do not matter; a broken lz4 block is an ErrCorrupt naming
// lz4.
func TestLZ4Options(t *testing.T) {
	ix, layers := build(t, everyType(4096)...)
	good := writeImage(t, ix, layers, sqfswriter.Options{Compression: sqfswriter.LZ4, BlockSize: 4096})
	// Our writer puts the options, uncompressed, right after the superblock.
	if h := le.Uint16(good[96:]); h != 0x8008 {
		t.Fatalf("options block header = %#x, want 0x8008 (8 bytes, uncompressed)", h)
	}
	for _, tc := range []struct {
		name  string
		patch func(b []byte)
		want  error  // nil: Open succeeds and the tree reads back
		msg   string // part of the error
	}{
		{"as written", func(b []byte) {}, nil, ""},
		{"hc flag", func(b []byte) { le.PutUint32(b[102:], 1) }, nil, ""},
		{"unknown flags", func(b []byte) { le.PutUint32(b[102:], 0x100) }, nil, ""},
		{"version 2", func(b []byte) { le.PutUint32(b[98:], 2) }, squashfs.ErrUnsupported, "lz4 stream format version 2"},
		{"version 0", func(b []byte) { le.PutUint32(b[98:], 0) }, squashfs.ErrUnsupported, "version 0"},
		{"options short", func(b []byte) { le.PutUint16(b[96:], 0x8004) }, squashfs.ErrCorrupt, "options of 4 bytes"},
		{"no options flag", func(b []byte) { le.PutUint16(b[24:], le.Uint16(b[24:])&^0x0400) }, squashfs.ErrCorrupt,
			"without its compressor options"},
		{"garbled inode block", func(b []byte) {
			at := le.Uint64(b[64:])
			h := le.Uint16(b[at:])
			if h&0x8000 != 0 {
				t.Fatalf("the first inode block is stored uncompressed")
			}
			for i := range uint64(h) {
				b[at+2+i] = 0xff
			}
		}, squashfs.ErrCorrupt, "lz4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := bytes.Clone(good)
			tc.patch(img)
			sq, err := open2(img)
			if tc.want == nil {
				check(t, err)
				same(t, "lz4 image", expect(t, ix, layers), readTree(t, sq))
				return
			}
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("Open = %v, want %v with %q", err, tc.want, tc.msg)
			}
		})
	}
}
