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
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/ocirender/ocirender/index"
	"github.com/ocirender/ocirender/squashfs"
	"github.com/ocirender/ocirender/verify"
)

// writeImage writes ix with our writer and returns the image's bytes.
func writeImage(t testing.TB, ix *index.Index, layers []io.ReaderAt, opts squashfs.Options) []byte {
	t.Helper()
	p := filepath.Join(t.TempDir(), "img.sqfs")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := squashfs.Write(context.Background(), f, ix, layers, opts); err != nil {
		t.Fatalf("Write: %v", err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
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

// everyType has one of everything squashfs holds, for block size bs.
func everyType(bs int) []node {
	shared := strings.Repeat("shared value ", 5) // long enough to be stored out of line once seen
	text := strings.Repeat("squashfs lorem ipsum ", 20000)
	return []node{
		dirN("dir").With(func(n *node) { n.Mode = 0o1777; n.Xattrs = []index.Xattr{{Name: "user.dir", Value: shared}} }),
		dirN("dir/empty"),
		regN("dir/empty-file", ""),
		regN("dir/small", "hello\n").With(func(n *node) { n.Mtime = 1700000000_999999999 }),
		{Path: "dir/bs-1", Type: index.Reg, Mode: 0o600, Body: randomBytes(1, bs-1)},
		{Path: "dir/bs", Type: index.Reg, Mode: 0o600, Body: randomBytes(2, bs)},
		{Path: "dir/bs+1", Type: index.Reg, Mode: 0o600, Body: randomBytes(3, bs+1)},
		{Path: "dir/text", Type: index.Reg, Mode: 0o644, Body: []byte(text)},
		{Path: "dir/text-copy", Type: index.Reg, Mode: 0o644, Body: []byte(text)},
		{Path: "dir/holes", Type: index.Reg, Mode: 0o644, Body: append(append(randomBytes(4, 100), make([]byte, 3*bs)...), "end"...)},
		{Path: "dir/zeros", Type: index.Reg, Mode: 0o644, Zeros: 5*int64(bs) + 7},
		regN("dir/setuid", "#!/bin/true\n").With(func(n *node) {
			n.Mode = 0o4755
			n.Xattrs = []index.Xattr{{Name: "security.capability", Value: capability}}
		}),
		regN("dir/setgid", "#!/bin/false\n").With(func(n *node) {
			n.Mode = 0o2755
			n.Xattrs = []index.Xattr{{Name: "security.capability", Value: capability},
				{Name: "trusted.overlay", Value: shared}, {Name: "user.x", Value: shared}, {Name: "user.empty", Value: ""}}
		}),
		hardN("dir/setuid-link", "dir/setuid"),
		hardN("hard-at-root", "dir/setuid"),
		regN("owned", "big ids").With(func(n *node) { n.UID, n.GID = 70000, 4294967294 }),
		symN("link", "dir/small"),
		symN("long-link", strings.Repeat("a/", 2047)+"z"),
		symN("xlink", "nowhere").With(func(n *node) { n.Xattrs = []index.Xattr{{Name: "trusted.t", Value: "v"}} }),
		hardN("link2", "link"),
		{Path: "dev-null", Type: index.Char, Mode: 0o666, Major: 1, Minor: 3},
		{Path: "dev-null-x", Type: index.Char, Mode: 0o666, Major: 1, Minor: 3, Xattrs: []index.Xattr{{Name: "user.c", Value: "1"}}},
		{Path: "fifo-x", Type: index.Fifo, Mode: 0o644, Xattrs: []index.Xattr{{Name: "user.f", Value: "1"}}},
		{Path: "socket-basic", Type: index.Socket, Mode: 0o755},
		{Path: "blk-basic", Type: index.Block, Mode: 0o660, Major: 7, Minor: 1},
		{Path: "dev-big", Type: index.Char, Mode: 0o600, Major: 4095, Minor: 0xfffff},
		{Path: "dev-blk", Type: index.Block, Mode: 0o660, Major: 8, Minor: 0x12345, UID: 6, GID: 6,
			Xattrs: []index.Xattr{{Name: "user.b", Value: "1"}}},
		{Path: "fifo", Type: index.Fifo, Mode: 0o644},
		hardN("fifo2", "fifo"),
		{Path: "socket", Type: index.Socket, Mode: 0o755, Xattrs: []index.Xattr{{Name: "trusted.s", Value: shared}}},
		{Path: "old", Type: index.Reg, Mode: 0o644, Body: []byte("1969"), Mtime: -1},
		{Path: "odd\nname\xff", Type: index.Reg, Mode: 0o644, Body: []byte("odd")},
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
	for _, comp := range []string{squashfs.Zstd, squashfs.Gzip, squashfs.XZ, squashfs.LZ4} {
		for _, bs := range []int{4096, squashfs.DefaultBlockSize} {
			t.Run(fmt.Sprintf("%s/%d", comp, bs), func(t *testing.T) {
				n := 3000
				if testing.Short() {
					n = 600 // still a listing of several metadata blocks, with an index
				}
				nodes := append(everyType(bs), bigDirs(n)...)
				ix, layers := build(t, nodes...)
				img := writeImage(t, ix, layers, squashfs.Options{Compression: comp, BlockSize: bs, Exportable: bs == 4096})
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

func TestReadEmptyRoot(t *testing.T) {
	ix, layers := build(t)
	sq := open(t, writeImage(t, ix, layers, squashfs.Options{}))
	same(t, "empty root", expect(t, ix, layers), readTree(t, sq))
}

func TestLookup(t *testing.T) {
	const n = 5000
	ix, layers := build(t, bigDirs(n)...)
	sq := open(t, writeImage(t, ix, layers, squashfs.Options{}))
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
	good := writeImage(t, ix, layers, squashfs.Options{Compression: squashfs.LZ4, BlockSize: 4096})
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
