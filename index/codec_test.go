package index

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// randomIndex builds an index of n entries through a Builder, adding them in random order
// (parents first, as the Builder requires): directories, files, hard links, symlinks (some
// resolving, some looping, some dangling), devices, fifos, sockets, and shared xattr sets.
func randomIndex(t testing.TB, seed uint64, n int) *Index {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	b := NewBuilder(n)
	root := b.AddEntry(NoParent, "", b.AddInode(Inode{Type: Dir, Mode: 0o755, Layer: NoLayer}))
	dirs := []ID{root}
	paths := []string{""}
	names := map[ID]map[string]bool{root: {}}
	var regs []InodeID
	xsets := [][]Xattr{
		{{Name: "user.a", Value: "1"}},
		{{Name: "security.capability", Value: "\x01\x00\x00\x02\x00\x20"}, {Name: "user.b", Value: ""}},
		{{Name: "trusted.x", Value: strings.Repeat("v", 300)}},
	}
	for i := 1; i < n; i++ {
		parent := dirs[rng.IntN(len(dirs))]
		name := randomName(rng)
		for names[parent][name] {
			name = randomName(rng)
		}
		names[parent][name] = true
		p := name
		if parent != root {
			p = paths[parent] + "/" + name
		}
		in := Inode{
			Mode:  uint32(rng.IntN(010000)),
			UID:   rng.Uint32() % 2000,
			GID:   rng.Uint32() % 2000,
			Mtime: rng.Int64() - rng.Int64(),
			Layer: rng.IntN(6) - 1,
		}
		if rng.IntN(8) == 0 {
			in.Xattrs = xsets[rng.IntN(len(xsets))]
		}
		switch k := rng.IntN(20); {
		case k < 5:
			in.Type = Dir
		case k < 12:
			in.Type, in.Size, in.Offset = Reg, rng.Int64N(1<<40), rng.Int64N(1<<40)
		case k < 14 && len(regs) > 0:
			b.AddEntry(parent, name, regs[rng.IntN(len(regs))])
			paths = append(paths, p)
			continue
		case k < 17:
			in.Type = Symlink
			switch rng.IntN(4) {
			case 0:
				in.Link = "/" + paths[rng.IntN(len(paths))]
			case 1:
				in.Link = "../" + paths[rng.IntN(len(paths))] + "/x"
			case 2:
				in.Link = name // a loop
			default:
				in.Link = randomName(rng)
			}
			in.Size = int64(len(in.Link))
		case k == 17:
			in.Type, in.Devmajor, in.Devminor = Char+Type(rng.IntN(2)), rng.Uint32(), rng.Uint32()
		case k == 18:
			in.Type = Fifo
		default:
			in.Type = Socket
		}
		ino := b.AddInode(in)
		id := b.AddEntry(parent, name, ino)
		paths = append(paths, p)
		switch in.Type {
		case Dir:
			dirs = append(dirs, id)
			names[id] = map[string]bool{}
		case Reg:
			regs = append(regs, ino)
		}
	}
	ix, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return ix
}

func randomName(rng *rand.Rand) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABZ0189._-~ \xc3\xa9\xff"
	for {
		b := make([]byte, 1+rng.IntN(14))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		if s := string(b); s != "." && s != ".." {
			return s
		}
	}
}

// preorder rebuilds ix the way overlay does: entries numbered in walk order.
func preorder(t testing.TB, ix *Index) *Index {
	t.Helper()
	b := NewBuilder(ix.Len())
	ids := make([]ID, ix.Len())
	inos := map[InodeID]InodeID{}
	err := ix.Walk(Root, func(id ID, _ string) error {
		ino, ok := inos[ix.Ino(id)]
		if !ok {
			ino = b.AddInode(ix.Inode(ix.Ino(id)))
			inos[ix.Ino(id)] = ino
		}
		parent := NoParent
		if id != Root {
			parent = ids[ix.Parent(id)]
		}
		ids[id] = b.AddEntry(parent, ix.Name(id), ino)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// small builds an index from "path type [target]" lines, parents first.
func small(t testing.TB, lines ...string) *Index {
	t.Helper()
	b := NewBuilder(len(lines))
	ids := map[string]ID{"": b.AddEntry(NoParent, "", b.AddInode(Inode{Type: Dir, Mode: 0o755, Layer: NoLayer}))}
	inos := map[string]InodeID{}
	for i, l := range lines {
		f := strings.Fields(l)
		p := f[0]
		parent, name := "", p
		if j := strings.LastIndexByte(p, '/'); j >= 0 {
			parent, name = p[:j], p[j+1:]
		}
		in := Inode{Mode: 0o644, UID: uint32(i), Mtime: int64(i) * 1e9, Layer: i % 3}
		switch f[1] {
		case "dir":
			in.Type = Dir
		case "file":
			in.Type, in.Size, in.Offset = Reg, int64(len(p)), int64(512*i)
		case "link":
			in.Type, in.Link, in.Size = Symlink, f[2], int64(len(f[2]))
		case "hard":
			ids[p] = b.AddEntry(ids[parent], name, inos[f[2]])
			continue
		case "xattr":
			in.Type = Reg
			in.Xattrs = []Xattr{{Name: "user.z", Value: f[2]}, {Name: "user.a", Value: ""}}
		case "dev":
			in.Type, in.Devmajor, in.Devminor = Block, 8, 1
		}
		inos[p] = b.AddInode(in)
		ids[p] = b.AddEntry(ids[parent], name, inos[p])
	}
	ix, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return ix
}

func smallIndex(t testing.TB) *Index {
	return small(t, "usr dir", "usr/lib dir", "usr/lib/x file", "lib link usr/lib", "usr/bin dir",
		"usr/bin/sh xattr v", "usr/bin/bash hard usr/bin/sh", "dev dir", "dev/sda dev", "etc dir")
}

// sameIndex fails unless every accessor of got answers as want's does.
func sameIndex(t *testing.T, got, want *Index) {
	t.Helper()
	if got.Len() != want.Len() || got.Inodes() != want.Inodes() || got.HasXattrs() != want.HasXattrs() ||
		got.Bytes() != want.Bytes() || got.ContentSize() != want.ContentSize() {
		t.Fatalf("Len, Inodes, HasXattrs, Bytes, ContentSize = %d %d %v %d %d, want %d %d %v %d %d",
			got.Len(), got.Inodes(), got.HasXattrs(), got.Bytes(), got.ContentSize(),
			want.Len(), want.Inodes(), want.HasXattrs(), want.Bytes(), want.ContentSize())
	}
	for i := range want.Len() {
		id := ID(i)
		if g, w := got.Entry(id), want.Entry(id); !reflect.DeepEqual(g, w) {
			t.Fatalf("Entry(%d) = %+v, want %+v", id, g, w)
		}
		if g, w := got.Children(id), want.Children(id); !slices.Equal(g, w) {
			t.Fatalf("Children(%d) = %v, want %v", id, g, w)
		}
		if g, w := got.Path(id), want.Path(id); g != w {
			t.Fatalf("Path(%d) = %q, want %q", id, g, w)
		}
		for _, follow := range []bool{false, true} {
			gid, gerr := got.Resolve(want.Path(id), follow)
			wid, werr := want.Resolve(want.Path(id), follow)
			if gid != wid || fmt.Sprint(gerr) != fmt.Sprint(werr) {
				t.Fatalf("Resolve(%q, %v) = %d, %v, want %d, %v", want.Path(id), follow, gid, gerr, wid, werr)
			}
		}
	}
	for i := range want.Inodes() {
		if g, w := got.Inode(InodeID(i)), want.Inode(InodeID(i)); !reflect.DeepEqual(g, w) {
			t.Fatalf("Inode(%d) = %+v, want %+v", i, g, w)
		}
	}
	if g, w := walkList(got, Root), walkList(want, Root); !slices.Equal(g, w) {
		t.Fatalf("Walk = %v, want %v", g, w)
	}
}

func walkList(ix *Index, start ID) []string {
	var out []string
	ix.Walk(start, func(id ID, p string) error {
		out = append(out, fmt.Sprintf("%d %s", id, p))
		return nil
	})
	return out
}

func TestMarshalRoundTrip(t *testing.T) {
	rootOnly, err := func() (*Index, error) {
		b := NewBuilder(1)
		b.AddEntry(NoParent, "", b.AddInode(Inode{Type: Dir, Mode: 0o700, Layer: NoLayer}))
		return b.Finish()
	}()
	if err != nil {
		t.Fatal(err)
	}
	random := randomIndex(t, 1, 3000)
	for _, tc := range []struct {
		name string
		ix   *Index
	}{
		{"root only", rootOnly},
		{"small", smallIndex(t)},
		{"random", random},
		{"random preorder", preorder(t, random)},
		{"random large", randomIndex(t, 2, 20000)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, err := tc.ix.MarshalBinary()
			if err != nil {
				t.Fatalf("MarshalBinary: %v", err)
			}
			got, err := Unmarshal(data)
			if err != nil {
				t.Fatalf("Unmarshal: %v", err)
			}
			sameIndex(t, got, tc.ix)

			// The decoded index shares nothing with the data.
			clear(data)
			sameIndex(t, got, tc.ix)

			// One index, one encoding; AppendBinary keeps what it is given.
			data, _ = tc.ix.MarshalBinary()
			again, err := got.AppendBinary([]byte("prefix"))
			if err != nil || string(again[:6]) != "prefix" || !bytes.Equal(again[6:], data) {
				t.Errorf("AppendBinary(prefix) of the decoded index = %d bytes, %v; want prefix and the %d bytes encoded",
					len(again), err, len(data))
			}
		})
	}
}

func TestMarshalRefuses(t *testing.T) {
	// The Builder takes any name; the encoding only those a path can have.
	for _, name := range []string{"", ".", "..", "a/b", "/", "a\x00b"} {
		b := NewBuilder(2)
		root := b.AddEntry(NoParent, "", b.AddInode(Inode{Type: Dir}))
		b.AddEntry(root, name, b.AddInode(Inode{Type: Reg}))
		ix, err := b.Finish()
		if err != nil {
			t.Fatal(err)
		}
		if data, err := ix.MarshalBinary(); err == nil || errors.Is(err, ErrCorrupt) {
			t.Errorf("MarshalBinary of an entry named %q = %d bytes, %v; want an error other than ErrCorrupt", name, len(data), err)
		}
	}
	t.Run("deep path", func(t *testing.T) {
		b := NewBuilder(0)
		id := b.AddEntry(NoParent, "", b.AddInode(Inode{Type: Dir}))
		for range maxPathLen / 100 {
			id = b.AddEntry(id, strings.Repeat("d", 99), b.AddInode(Inode{Type: Dir}))
		}
		ix, err := b.Finish()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ix.MarshalBinary(); err != nil {
			t.Fatalf("MarshalBinary of a path of %d bytes: %v", len(ix.Path(id)), err)
		}
		b = NewBuilder(0)
		id = b.AddEntry(NoParent, "", b.AddInode(Inode{Type: Dir}))
		for range maxPathLen/100 + 1 {
			id = b.AddEntry(id, strings.Repeat("d", 99), b.AddInode(Inode{Type: Dir}))
		}
		if ix, err = b.Finish(); err != nil {
			t.Fatal(err)
		}
		if data, err := ix.MarshalBinary(); err == nil {
			t.Errorf("MarshalBinary of a path of %d bytes = %d bytes, want an error", len(ix.Path(id)), len(data))
		}
	})
}

// clone copies the tables of ix, so that a test may damage them.
func clone(ix *Index) *Index {
	c := &Index{
		entries: slices.Clone(ix.entries),
		inodes:  slices.Clone(ix.inodes),
		kids:    slices.Clone(ix.kids),
		strs:    slices.Clone(ix.strs),
		xsets:   make([][]Xattr, len(ix.xsets)),
	}
	for i, s := range ix.xsets {
		c.xsets[i] = slices.Clone(s)
	}
	return c
}

// find returns the id of path p in ix, failing the test if there is none.
func find(t *testing.T, ix *Index, p string) ID {
	t.Helper()
	id, err := ix.Lookup(p)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// rename points the name of id at a new string s.
func rename(ix *Index, id ID, s string) {
	ix.entries[id].name = strRef{off: uint32(len(ix.strs)), len: uint32(len(s))}
	ix.strs = append(ix.strs, s...)
}

func TestUnmarshalCorrupt(t *testing.T) {
	// Damage to the tables, written out as they are.
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, ix *Index)
	}{
		{"root has a parent", func(t *testing.T, ix *Index) { ix.entries[0].parent = 0 }},
		{"root has a name", func(t *testing.T, ix *Index) { rename(ix, Root, "r") }},
		{"root is a file", func(t *testing.T, ix *Index) { ix.inodes[ix.Ino(Root)].typ = Reg }},
		{"parent is a file", func(t *testing.T, ix *Index) {
			ix.inodes[ix.Ino(find(t, ix, "usr/lib"))].typ = Reg
		}},
		{"parent follows child", func(t *testing.T, ix *Index) {
			ix.entries[find(t, ix, "usr")].parent = find(t, ix, "usr/lib")
		}},
		{"parent is itself", func(t *testing.T, ix *Index) {
			id := find(t, ix, "etc")
			ix.entries[id].parent = id
		}},
		{"second root", func(t *testing.T, ix *Index) { ix.entries[find(t, ix, "etc")].parent = NoParent }},
		{"inode out of range", func(t *testing.T, ix *Index) { ix.entries[1].ino = InodeID(len(ix.inodes)) }},
		{"type 0", func(t *testing.T, ix *Index) { ix.inodes[ix.Ino(find(t, ix, "usr/lib/x"))].typ = 0 }},
		{"type 8", func(t *testing.T, ix *Index) { ix.inodes[ix.Ino(find(t, ix, "usr/lib/x"))].typ = Socket + 1 }},
		{"mode with type bits", func(t *testing.T, ix *Index) { ix.inodes[ix.Ino(find(t, ix, "usr/lib/x"))].mode = 0o100644 & 0xffff }},
		{"layer -2", func(t *testing.T, ix *Index) { ix.inodes[ix.Ino(find(t, ix, "usr/lib/x"))].layer = -2 }},
		{"negative size", func(t *testing.T, ix *Index) { ix.inodes[ix.Ino(find(t, ix, "usr/lib/x"))].size = -1 }},
		{"negative offset", func(t *testing.T, ix *Index) { ix.inodes[ix.Ino(find(t, ix, "usr/lib/x"))].offset = -1 }},
		{"xattr set out of range", func(t *testing.T, ix *Index) {
			ix.inodes[ix.Ino(find(t, ix, "usr/lib/x"))].xattrs = uint32(len(ix.xsets))
		}},
		{"empty name", func(t *testing.T, ix *Index) { rename(ix, find(t, ix, "etc"), "") }},
		{"dot name", func(t *testing.T, ix *Index) { rename(ix, find(t, ix, "etc"), ".") }},
		{"dot dot name", func(t *testing.T, ix *Index) { rename(ix, find(t, ix, "usr/lib"), "..") }},
		{"slash in a name", func(t *testing.T, ix *Index) { rename(ix, find(t, ix, "etc"), "etc/x") }},
		{"NUL in a name", func(t *testing.T, ix *Index) { rename(ix, find(t, ix, "etc"), "etc\x00") }},
		{"children unsorted", func(t *testing.T, ix *Index) {
			k := ix.Children(Root)
			k[0], k[1] = k[1], k[0]
		}},
		{"duplicate names", func(t *testing.T, ix *Index) { rename(ix, find(t, ix, "etc"), "dev") }},
		{"child in the wrong directory", func(t *testing.T, ix *Index) {
			// usr/bin has two children, usr/lib one: move usr/lib/x's slot into usr/bin's run.
			bin, lib := find(t, ix, "usr/bin"), find(t, ix, "usr/lib")
			ix.kids[ix.entries[bin].kids], ix.kids[ix.entries[lib].kids] = ix.kids[ix.entries[lib].kids], ix.kids[ix.entries[bin].kids]
		}},
		{"child out of range", func(t *testing.T, ix *Index) { ix.Children(Root)[0] = ID(len(ix.entries)) }},
		{"root as a child", func(t *testing.T, ix *Index) { ix.Children(Root)[0] = Root }},
		{"child twice", func(t *testing.T, ix *Index) {
			k := ix.Children(Root)
			k[1] = k[0]
		}},
		{"empty xattr set", func(t *testing.T, ix *Index) { ix.xsets[1] = nil }},
		{"empty xattr name", func(t *testing.T, ix *Index) { ix.xsets[1][0].Name = "" }},
		{"NUL in an xattr name", func(t *testing.T, ix *Index) { ix.xsets[1][0].Name = "user.\x00" }},
		{"xattrs unsorted", func(t *testing.T, ix *Index) { ix.xsets[1][0], ix.xsets[1][1] = ix.xsets[1][1], ix.xsets[1][0] }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ix := clone(smallIndex(t))
			tc.damage(t, ix)
			data, err := ix.appendEncoding(nil)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := Unmarshal(data); !errors.Is(err, ErrCorrupt) {
				t.Errorf("Unmarshal = %v, %v; want %v", got != nil, err, ErrCorrupt)
			} else {
				t.Log(err)
			}
			if _, err := ix.MarshalBinary(); err == nil {
				t.Errorf("MarshalBinary of the damaged index succeeded")
			}
		})
	}

	// Damage to the bytes.
	valid, err := smallIndex(t).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	field := func(i int) int { return len(codecMagic) + 4*i } // offset of header field i
	strStart := len(valid) - int(le.Uint32(valid[field(6):]))
	for _, tc := range []struct {
		name   string
		damage func(b []byte) []byte
	}{
		{"empty", func(b []byte) []byte { return nil }},
		{"magic", func(b []byte) []byte { b[0] = 'O'; return b }},
		{"version", func(b []byte) []byte { le.PutUint32(b[field(0):], 2); return b }},
		{"no entries", func(b []byte) []byte { le.PutUint32(b[field(1):], 0); return b }},
		{"one entry more", func(b []byte) []byte { le.PutUint32(b[field(1):], le.Uint32(b[field(1):])+1); return b }},
		{"huge counts", func(b []byte) []byte {
			for i := 1; i < 7; i++ {
				le.PutUint32(b[field(i):], 0xffffffff)
			}
			return b
		}},
		{"trailing byte", func(b []byte) []byte { return append(b, 0) }},
		{"padding", func(b []byte) []byte { b[headerLen+inodeLen-1] = 1; return b }},
		{"string table too short for a name", func(b []byte) []byte {
			// The root's name length claims the whole table and then some.
			le.PutUint32(b[field(6):], le.Uint32(b[field(6):])+1)
			b = append(b, 'x')
			nino := int(le.Uint32(b[field(2):]))
			le.PutUint32(b[headerLen+nino*inodeLen:], uint32(len(b)))
			return b
		}},
		{"unused string bytes", func(b []byte) []byte {
			le.PutUint32(b[field(6):], le.Uint32(b[field(6):])+1)
			return append(b, 'x')
		}},
		{"xattrs in no set", func(b []byte) []byte {
			le.PutUint32(b[field(4):], le.Uint32(b[field(4):])+1)
			return slices.Insert(b, strStart, make([]byte, 8)...)
		}},
		{"unused xattr bytes", func(b []byte) []byte {
			le.PutUint32(b[field(5):], le.Uint32(b[field(5):])+1)
			return slices.Insert(b, strStart, 'x')
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := tc.damage(slices.Clone(valid))
			if got, err := Unmarshal(data); !errors.Is(err, ErrCorrupt) {
				t.Errorf("Unmarshal = %v, %v; want %v", got != nil, err, ErrCorrupt)
			} else {
				t.Log(err)
			}
		})
	}
}

func TestUnmarshalTruncated(t *testing.T) {
	data, err := smallIndex(t).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	for n := range len(data) {
		if ix, err := Unmarshal(data[:n]); !errors.Is(err, ErrCorrupt) {
			t.Errorf("Unmarshal(first %d of %d bytes) = %v, %v; want %v", n, len(data), ix != nil, err, ErrCorrupt)
		}
	}
}

// TestUnmarshalFlipped damages every byte of an encoding in a few ways: each result must be
// refused or decode to an index every method of which works.
func TestUnmarshalFlipped(t *testing.T) {
	data, err := smallIndex(t).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	accepted := 0
	for i := range data {
		for _, mask := range []byte{0x01, 0x02, 0x10, 0x80, 0xff} {
			d := slices.Clone(data)
			d[i] ^= mask
			ix, err := Unmarshal(d)
			if err != nil {
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("byte %d ^ %#x: Unmarshal error %v does not wrap ErrCorrupt", i, mask, err)
				}
				continue
			}
			accepted++
			exercise(t, ix, d)
		}
	}
	t.Logf("%d of %d damaged encodings decode", accepted, 5*len(data))
}

// exercise calls every method of ix on every entry and inode and checks what must hold of
// any valid index. data is the encoding ix came from.
func exercise(t *testing.T, ix *Index, data []byte) {
	t.Helper()
	if again, err := ix.MarshalBinary(); err != nil || !bytes.Equal(again, data) {
		t.Fatalf("re-encoding a decoded index = %d bytes, %v; want the %d bytes it came from", len(again), err, len(data))
	}
	_, _, _, _ = ix.Len(), ix.Inodes(), ix.HasXattrs(), ix.Bytes()
	_ = ix.ContentSize()
	for i := range ix.Inodes() {
		_ = ix.Inode(InodeID(i))
	}
	seen := make([]bool, ix.Len())
	err := ix.Walk(Root, func(id ID, p string) error {
		if seen[id] {
			return fmt.Errorf("Walk visits %d twice", id)
		}
		seen[id] = true
		if want := ix.Path(id); p != want {
			return fmt.Errorf("Walk passes %d as %q, Path says %q", id, p, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range ix.Len() {
		id := ID(i)
		if !seen[id] {
			t.Fatalf("Walk misses entry %d", id)
		}
		e := ix.Entry(id)
		_ = ix.Type(id)
		p := ix.Path(id)
		if got, err := ix.Lookup(p); got != id || err != nil {
			t.Fatalf("Lookup(Path(%d) = %q) = %d, %v", id, p, got, err)
		}
		if id != Root {
			if got, ok := ix.Child(e.Parent, e.Name); got != id || !ok {
				t.Fatalf("Child(%d, %q) = %d, %v; want %d", e.Parent, e.Name, got, ok, id)
			}
		}
		for _, k := range ix.Children(id) {
			if ix.Parent(k) != id {
				t.Fatalf("child %d of %d has parent %d", k, id, ix.Parent(k))
			}
		}
		for _, q := range []string{p, p + "/", "/" + p + "/../" + p, e.Link, p + "/" + e.Link} {
			_, _ = ix.Resolve(q, false)
			_, _ = ix.Resolve(q, true)
		}
		if ix.Len() <= 200 {
			_ = ix.Walk(id, func(ID, string) error { return nil })
		}
	}
}

func FuzzUnmarshal(f *testing.F) {
	for _, ix := range []*Index{smallIndex(f), randomIndex(f, 3, 40), preorder(f, randomIndex(f, 4, 60))} {
		data, err := ix.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
		f.Add(data[:len(data)/2])
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ix, err := Unmarshal(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Unmarshal error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		exercise(t, ix, data)
	})
}

// benchIndex is shaped like a merged image: entries in walk order, directories of a few dozen
// files with names of ordinary length, some symlinks and hard links.
func benchIndex(b *testing.B, n int) *Index {
	rng := rand.New(rand.NewPCG(9, 9))
	bl := NewBuilder(n)
	type dir struct {
		id   ID
		left int
	}
	stack := []dir{{bl.AddEntry(NoParent, "", bl.AddInode(Inode{Type: Dir, Mode: 0o755, Layer: NoLayer})), 12}}
	var reg InodeID
	for i := 1; i < n; {
		top := &stack[len(stack)-1]
		if top.left == 0 && len(stack) > 1 {
			stack = stack[:len(stack)-1]
			continue
		}
		top.left--
		name := fmt.Sprintf("%s-%d.%s", []string{"lib", "python3", "share", "locale", "x86_64"}[rng.IntN(5)], i, []string{"so", "py", "mo", "h", "txt"}[rng.IntN(5)])
		in := Inode{Mode: 0o644, Mtime: 1700000000e9 + int64(rng.IntN(1e6)), Layer: rng.IntN(8)}
		switch k := rng.IntN(40); {
		case k < 3 && len(stack) < 12:
			in.Type, in.Mode = Dir, 0o755
			id := bl.AddEntry(top.id, name, bl.AddInode(in))
			stack = append(stack, dir{id, 5 + rng.IntN(40)})
			i++
			continue
		case k < 6:
			in.Type, in.Link = Symlink, "../lib/"+name
			in.Size = int64(len(in.Link))
		case k < 7 && reg != 0:
			bl.AddEntry(top.id, name, reg)
			i++
			continue
		default:
			in.Type, in.Size, in.Offset = Reg, rng.Int64N(1<<20), rng.Int64N(1<<30)
		}
		ino := bl.AddInode(in)
		if in.Type == Reg {
			reg = ino
		}
		bl.AddEntry(top.id, name, ino)
		i++
	}
	ix, err := bl.Finish()
	if err != nil {
		b.Fatal(err)
	}
	return ix
}

// BenchmarkUnmarshal decodes a 300 000-entry index numbered as overlay numbers it (in walk
// order), and the same index numbered in the order its entries were added, whose children lie
// scattered through the tables.
func BenchmarkUnmarshal(b *testing.B) {
	added := benchIndex(b, 300_000)
	for _, bc := range []struct {
		name string
		ix   *Index
	}{
		{"walk-order", preorder(b, added)},
		{"added-order", added},
	} {
		b.Run(bc.name, func(b *testing.B) {
			data, err := bc.ix.MarshalBinary()
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Unmarshal(data); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(bc.ix.Len()), "ns/entry")
			b.ReportMetric(float64(len(data))/float64(bc.ix.Len()), "encoded-bytes/entry")
		})
	}
}

func BenchmarkMarshal(b *testing.B) {
	ix := benchIndex(b, 300_000)
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = ix.AppendBinary(buf[:0]); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(buf)))
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(ix.Len()), "ns/entry")
}
