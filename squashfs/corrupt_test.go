package squashfs_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/ocirender/ocirender/squashfs"
)

// rawImage builds images by hand, with every metadata block stored uncompressed, so that a
// test can write exactly the (broken) structure it wants. Tables hold their uncompressed
// bytes; positions in them become metadata references when the image is laid out.
type rawImage struct {
	bs      int
	data    []byte // data blocks, after the superblock
	inodes  []byte
	dirs    []byte
	ids     []uint32
	frags   [][2]uint64 // fragment table: start, size word
	kv      []byte      // xattr key/value table
	xids    [][3]uint64 // xattr id table: kv reference, count, size
	root    uint64      // inode reference of the root
	count   uint32      // inodes numbered so far
	patch   func(img []byte)
	nolimit bool // leave bytes_used alone in patch
}

func newRaw() *rawImage { return &rawImage{bs: 4096, ids: []uint32{0}} }

const metaBlock = 8192

// ref turns a position in an uncompressed table into a metadata reference.
func ref(pos int) uint64 {
	return uint64(pos/metaBlock*(metaBlock+2))<<16 | uint64(pos%metaBlock)
}

var le = binary.LittleEndian

// header starts an inode of type t (1..14) and returns its reference and number.
func (r *rawImage) header(t uint16, mode uint16) (uint64, uint32) {
	r.count++
	at := ref(len(r.inodes))
	r.inodes = le.AppendUint16(r.inodes, t)
	r.inodes = le.AppendUint16(r.inodes, mode)
	r.inodes = le.AppendUint16(r.inodes, 0) // uid index
	r.inodes = le.AppendUint16(r.inodes, 0) // gid index
	r.inodes = le.AppendUint32(r.inodes, 1600000000)
	r.inodes = le.AppendUint32(r.inodes, r.count)
	return at, r.count
}

type rawEntry struct {
	name string
	ref  uint64
	num  uint32
	typ  uint16
}

// listing writes a directory listing, one header per entry, and returns its position and
// length.
func (r *rawImage) listing(entries ...rawEntry) (int, int) {
	at := len(r.dirs)
	for _, e := range entries {
		r.dirs = le.AppendUint32(r.dirs, 0)
		r.dirs = le.AppendUint32(r.dirs, uint32(e.ref>>16))
		r.dirs = le.AppendUint32(r.dirs, e.num)
		r.dirs = le.AppendUint16(r.dirs, uint16(e.ref))
		r.dirs = le.AppendUint16(r.dirs, 0)
		r.dirs = le.AppendUint16(r.dirs, e.typ)
		r.dirs = le.AppendUint16(r.dirs, uint16(len(e.name)-1))
		r.dirs = append(r.dirs, e.name...)
	}
	return at, len(r.dirs) - at
}

// dir writes a basic directory inode for a listing.
func (r *rawImage) dir(listing, length int) (uint64, uint32) {
	at, num := r.header(1, 0o755)
	lr := ref(listing)
	r.inodes = le.AppendUint32(r.inodes, uint32(lr>>16))
	r.inodes = le.AppendUint32(r.inodes, 2)
	r.inodes = le.AppendUint16(r.inodes, uint16(length+3))
	r.inodes = le.AppendUint16(r.inodes, uint16(lr))
	r.inodes = le.AppendUint32(r.inodes, 1)
	return at, num
}

// file writes a basic regular file inode.
func (r *rawImage) file(start, frag, fragOff, size uint32, blocks ...uint32) (uint64, uint32) {
	at, num := r.header(2, 0o644)
	for _, v := range append([]uint32{start, frag, fragOff, size}, blocks...) {
		r.inodes = le.AppendUint32(r.inodes, v)
	}
	return at, num
}

// symlink writes a basic symlink inode with a target of n bytes.
func (r *rawImage) symlink(target string) (uint64, uint32) {
	at, num := r.header(3, 0o777)
	r.inodes = le.AppendUint32(r.inodes, 1)
	r.inodes = le.AppendUint32(r.inodes, uint32(len(target)))
	r.inodes = append(r.inodes, target...)
	return at, num
}

// rawTable lays out an uncompressed table as stored metadata blocks.
func rawTable(b []byte) []byte {
	var out []byte
	for len(b) > 0 {
		n := min(len(b), metaBlock)
		out = le.AppendUint16(out, uint16(n)|0x8000)
		out = append(out, b[:n]...)
		b = b[n:]
	}
	return out
}

func (r *rawImage) bytes() []byte {
	img := make([]byte, 96)
	img = append(img, r.data...)
	inodeTable := len(img)
	img = append(img, rawTable(r.inodes)...)
	dirTable := len(img)
	img = append(img, rawTable(r.dirs)...)
	fragTable := len(img)
	if len(r.frags) > 0 {
		var raw []byte
		for _, f := range r.frags {
			raw = le.AppendUint64(raw, f[0])
			raw = le.AppendUint32(raw, uint32(f[1]))
			raw = le.AppendUint32(raw, 0)
		}
		blocks := len(img)
		img = append(img, rawTable(raw)...)
		fragTable = len(img)
		img = le.AppendUint64(img, uint64(blocks))
	}
	var raw []byte
	for _, id := range r.ids {
		raw = le.AppendUint32(raw, id)
	}
	idBlock := len(img)
	img = append(img, rawTable(raw)...)
	idTable := len(img)
	img = le.AppendUint64(img, uint64(idBlock))
	xattrTable := ^uint64(0)
	if r.xids != nil {
		kvStart := len(img)
		img = append(img, rawTable(r.kv)...)
		var raw []byte
		for _, x := range r.xids {
			raw = le.AppendUint64(raw, x[0])
			raw = le.AppendUint32(raw, uint32(x[1]))
			raw = le.AppendUint32(raw, uint32(x[2]))
		}
		blocks := len(img)
		img = append(img, rawTable(raw)...)
		xattrTable = uint64(len(img))
		img = le.AppendUint64(img, uint64(kvStart))
		img = le.AppendUint32(img, uint32(len(r.xids)))
		img = le.AppendUint32(img, 0)
		img = le.AppendUint64(img, uint64(blocks))
	}
	sb := img[:96]
	le.PutUint32(sb[0:], 0x73717368)
	le.PutUint32(sb[4:], r.count)
	le.PutUint32(sb[12:], uint32(r.bs))
	le.PutUint32(sb[16:], uint32(len(r.frags)))
	le.PutUint16(sb[20:], 1) // gzip
	le.PutUint16(sb[22:], 12)
	if r.xids == nil {
		le.PutUint16(sb[24:], 0x0200) // no xattrs
	}
	le.PutUint16(sb[26:], uint16(len(r.ids)))
	le.PutUint16(sb[28:], 4)
	le.PutUint64(sb[32:], r.root)
	le.PutUint64(sb[40:], uint64(len(img)))
	le.PutUint64(sb[48:], uint64(idTable))
	le.PutUint64(sb[56:], xattrTable)
	le.PutUint64(sb[64:], uint64(inodeTable))
	le.PutUint64(sb[72:], uint64(dirTable))
	le.PutUint64(sb[80:], uint64(fragTable))
	le.PutUint64(sb[88:], ^uint64(0))
	if r.patch != nil {
		r.patch(img)
	}
	return img
}

// xattrFifo writes an extended fifo inode with xattr id id.
func (r *rawImage) xattrFifo(id uint32) (uint64, uint32) {
	a, n := r.header(13, 0o644)
	r.inodes = le.AppendUint32(r.inodes, 1)
	r.inodes = le.AppendUint32(r.inodes, id)
	return a, n
}

// kvEntry appends an xattr name (type 0 is user.) and an inline value, or with ool an
// out-of-line reference, to the key/value table, and returns where the value went.
func (r *rawImage) kvEntry(typ uint16, name, value string, ool uint64, isOOL bool) uint64 {
	if isOOL {
		typ |= 0x100
	}
	r.kv = le.AppendUint16(r.kv, typ)
	r.kv = le.AppendUint16(r.kv, uint16(len(name)))
	r.kv = append(r.kv, name...)
	at := ref(len(r.kv))
	if isOOL {
		r.kv = le.AppendUint32(r.kv, 8)
		r.kv = le.AppendUint64(r.kv, ool)
	} else {
		r.kv = le.AppendUint32(r.kv, uint32(len(value)))
		r.kv = append(r.kv, value...)
	}
	return at
}

// xattrImage is an image whose root lists a fifo "x" with xattr set 0, made by sets.
func xattrImage(sets func(r *rawImage)) []byte {
	return rootWithInode(func(r *rawImage) (uint64, uint32, uint16) {
		sets(r)
		a, n := r.xattrFifo(0)
		return a, n, 6
	})
}

// simple is a valid image: a root holding a file (data block and tail fragment), a symlink
// and a subdirectory with one file.
func simple() *rawImage {
	r := newRaw()
	r.data = append(bytes.Repeat([]byte("A"), 4096), "tail"...)
	r.frags = [][2]uint64{{96 + 4096, 4 | 1<<24}}
	f, fn := r.file(96, 0, 0, 4100, 4096|1<<24)
	s, sn := r.symlink("f")
	g, gn := r.file(0, 0, 1, 3)
	l, n := r.listing(rawEntry{"g", g, gn, 2})
	sub, subn := r.dir(l, n)
	l, n = r.listing(rawEntry{"f", f, fn, 2}, rawEntry{"s", s, sn, 3}, rawEntry{"sub", sub, subn, 1})
	r.root, _ = r.dir(l, n)
	return r
}

// walkAll opens img, walks it and reads every file and xattr set.
func walkAll(img []byte) error {
	sq, err := open2(img)
	if err != nil {
		return err
	}
	return sq.Walk(func(p string, in *squashfs.Inode) error {
		if _, err := sq.Xattrs(in); err != nil {
			return err
		}
		if in.Type != squashfs.Reg {
			return nil
		}
		f, err := sq.OpenFile(in)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, io.LimitReader(f, 1<<20))
		return err
	})
}

func TestRawImage(t *testing.T) {
	sq, err := open2(simple().bytes())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	err = sq.Walk(func(p string, in *squashfs.Inode) error {
		s := fmt.Sprintf("%s:%s", p, in.Type)
		if in.Type == squashfs.Reg {
			f, err := sq.OpenFile(in)
			if err != nil {
				return err
			}
			b, err := io.ReadAll(f)
			if err != nil {
				return err
			}
			s += fmt.Sprintf(":%d:%s", len(b), b[max(0, len(b)-4):])
		}
		got = append(got, s)
		return nil
	})
	want := ":dir f:file:4100:tail s:symlink sub:dir sub/g:file:3:ail"
	if err != nil || strings.Join(got, " ") != want {
		t.Errorf("Walk = %q, %v; want %q", strings.Join(got, " "), err, want)
	}
}

func TestRawXattrs(t *testing.T) {
	img := xattrImage(func(r *rawImage) {
		v := r.kvEntry(1, "shared", strings.Repeat("s", 100), 0, false)
		start := ref(len(r.kv))
		r.kvEntry(0, "inline", "\x00\xff", 0, false)
		r.kvEntry(2, "capability", "", v, true)
		r.xids = [][3]uint64{{start, 2, 40}}
	})
	sq, err := open2(img)
	if err != nil {
		t.Fatal(err)
	}
	in, err := sq.Stat("x")
	if err != nil {
		t.Fatal(err)
	}
	xs, err := sq.Xattrs(in)
	want := []squashfs.Xattr{{Name: "user.inline", Value: "\x00\xff"}, {Name: "security.capability", Value: strings.Repeat("s", 100)}}
	if err != nil || !reflect.DeepEqual(xs, want) {
		t.Errorf("Xattrs = %q, %v; want %q", xs, err, want)
	}
}

func TestCorrupt(t *testing.T) {
	for _, tc := range []struct {
		name string
		img  func() []byte
		want error  // ErrCorrupt unless set
		msg  string // part of the error
	}{
		{"empty", func() []byte { return nil }, squashfs.ErrNotSquashfs, "shorter than a superblock"},
		{"bad magic", func() []byte { b := simple().bytes(); b[0] = 'x'; return b }, squashfs.ErrNotSquashfs, "magic"},
		{"big endian", func() []byte { b := simple().bytes(); copy(b, "sqsh"); return b }, squashfs.ErrUnsupported, "big-endian"},
		{"version 3", func() []byte { b := simple().bytes(); b[28] = 3; return b }, squashfs.ErrUnsupported, "version 3.0"},
		{"lzo", func() []byte { b := simple().bytes(); b[20] = 3; return b }, squashfs.ErrUnsupported, "lzo"},
		{"lz4 without options", func() []byte { b := simple().bytes(); b[20] = 5; return b }, nil, "lz4 image without its compressor options"},
		{"compressor 9", func() []byte { b := simple().bytes(); b[20] = 9; return b }, nil, "compressor id 9"},
		{"block size", func() []byte { b := simple().bytes(); le.PutUint32(b[12:], 3000); return b }, nil, "block size"},
		{"block log", func() []byte { b := simple().bytes(); b[22] = 13; return b }, nil, "block log"},
		{"truncated", func() []byte { b := simple().bytes(); return b[:len(b)-1] }, nil, "truncated"},
		{"tables out of order", func() []byte {
			b := simple().bytes()
			le.PutUint64(b[72:], le.Uint64(b[64:]))
			return b
		}, nil, "inode table"},
		{"no ids", func() []byte { b := simple().bytes(); b[26] = 0; return b }, nil, "empty id table"},
		{"id index outside", func() []byte { b := simple().bytes(); le.PutUint64(b[48:], 1<<40); return b }, nil, "outside the image"},
		{"root ref outside", func() []byte { b := simple().bytes(); le.PutUint64(b[32:], 1<<40); return b }, nil, "outside the inode table"},
		{"root offset", func() []byte { b := simple().bytes(); le.PutUint64(b[32:], 9000); return b }, nil, "outside the inode table"},
		{"root not a dir", func() []byte {
			r := newRaw()
			r.root, _ = r.symlink("x")
			return r.bytes()
		}, nil, "root inode is a symlink"},
		{"metadata block length 0", func() []byte {
			r := simple()
			r.patch = func(b []byte) { le.PutUint16(b[le.Uint64(b[64:]):], 0x8000) }
			return r.bytes()
		}, nil, "length of 0"},
		{"metadata block past its table", func() []byte {
			r := simple()
			r.patch = func(b []byte) { le.PutUint16(b[le.Uint64(b[64:]):], 0x8000|8000) }
			return r.bytes()
		}, nil, "past its table"},
		{"compressed metadata garbage", func() []byte {
			r := simple()
			r.patch = func(b []byte) { b[le.Uint64(b[64:])+1] &^= 0x80 }
			return r.bytes()
		}, nil, "gzip"},
		{"inode type 15", func() []byte {
			r := simple()
			r.patch = func(b []byte) { le.PutUint16(b[le.Uint64(b[64:])+2:], 15) }
			return r.bytes()
		}, nil, "inode type 15"},
		{"uid index", func() []byte {
			r := simple()
			r.patch = func(b []byte) { le.PutUint16(b[le.Uint64(b[64:])+2+4:], 1) }
			return r.bytes()
		}, nil, "uid/gid index 1/0"},
		{"cycle", func() []byte {
			r := newRaw()
			// The root's listing names the root itself.
			l, n := r.listing(rawEntry{"loop", ref(0), 1, 1})
			r.root, _ = r.dir(l, n)
			return r.bytes()
		}, nil, "appears twice"},
		{"two dirs, one listing", func() []byte {
			r := newRaw()
			f, fn := r.file(0, 0xffffffff, 0, 0)
			l, n := r.listing(rawEntry{"f", f, fn, 2})
			a, an := r.dir(l, n)
			b, bn := r.dir(l, n)
			l, n = r.listing(rawEntry{"a", a, an, 1}, rawEntry{"b", b, bn, 1})
			r.root, _ = r.dir(l, n)
			return r.bytes()
		}, nil, "share the listing"},
		{"dotdot name", func() []byte { return rootWith(rawEntry{name: ".."}) }, nil, `entry name ".."`},
		{"slash in a name", func() []byte { return rootWith(rawEntry{name: "a/b"}) }, nil, `entry name "a/b"`},
		{"NUL in a name", func() []byte { return rootWith(rawEntry{name: "a\x00"}) }, nil, `entry name`},
		{"duplicate names", func() []byte { return rootWith(rawEntry{name: "x"}, rawEntry{name: "x"}) }, nil, `two entries named "x"`},
		{"type mismatch", func() []byte { return rootWith(rawEntry{name: "x", typ: 1}) }, nil, "listed as a dir"},
		{"entry type 9", func() []byte { return rootWith(rawEntry{name: "x", typ: 9}) }, nil, "type 9"},
		{"entry inode offset", func() []byte { return rootWith(rawEntry{name: "x", ref: 9000}) }, nil, "inode offset 9000"},
		{"listing header count", func() []byte {
			r := newRaw()
			f, fn := r.file(0, 0xffffffff, 0, 0)
			l, n := r.listing(rawEntry{"f", f, fn, 2})
			le.PutUint32(r.dirs[l:], 256)
			r.root, _ = r.dir(l, n)
			return r.bytes()
		}, nil, "header of 257 entries"},
		{"listing longer than the table", func() []byte {
			r := newRaw()
			f, fn := r.file(0, 0xffffffff, 0, 0)
			l, n := r.listing(rawEntry{"f", f, fn, 2})
			r.root, _ = r.dir(l, n+100)
			return r.bytes()
		}, nil, ""},
		{"symlink too long", func() []byte {
			return rootWithInode(func(r *rawImage) (uint64, uint32, uint16) {
				a, n := r.symlink(strings.Repeat("x", 5000))
				return a, n, 3
			})
		}, nil, "symlink target of 5000 bytes"},
		{"fragment out of range", func() []byte {
			return rootWithInode(func(r *rawImage) (uint64, uint32, uint16) {
				a, n := r.file(0, 7, 0, 10)
				return a, n, 2
			})
		}, nil, "fragment 7 of 0"},
		{"data block beyond the image", func() []byte {
			return rootWithInode(func(r *rawImage) (uint64, uint32, uint16) {
				a, n := r.file(1<<30, 0xffffffff, 0, 10, 10|1<<24)
				return a, n, 2
			})
		}, nil, "beyond"},
		{"data block above the block size", func() []byte {
			return rootWithInode(func(r *rawImage) (uint64, uint32, uint16) {
				a, n := r.file(96, 0xffffffff, 0, 10, 5000)
				return a, n, 2
			})
		}, nil, "above the block size"},
		{"raw data block of the wrong size", func() []byte {
			return rootWithInode(func(r *rawImage) (uint64, uint32, uint16) {
				r.data = make([]byte, 20)
				a, n := r.file(96, 0xffffffff, 0, 10, 20|1<<24)
				return a, n, 2
			})
		}, nil, "20 bytes stored, want 10"},
		{"compressed data garbage", func() []byte {
			return rootWithInode(func(r *rawImage) (uint64, uint32, uint16) {
				r.data = bytes.Repeat([]byte{0x55}, 20)
				a, n := r.file(96, 0xffffffff, 0, 10, 20)
				return a, n, 2
			})
		}, nil, "gzip"},
		{"tail beyond its fragment", func() []byte {
			r := simple()
			r.frags[0][1] = 2 | 1<<24
			return r.bytes()
		}, nil, "beyond the 2 bytes of fragment 0"},
		{"xattrs without a table", func() []byte {
			return rootWithInode(func(r *rawImage) (uint64, uint32, uint16) {
				a, n := r.header(13, 0o644) // extended fifo
				r.inodes = le.AppendUint32(r.inodes, 1)
				r.inodes = le.AppendUint32(r.inodes, 0)
				return a, n, 6
			})
		}, nil, "no xattr table"},
		{"xattr id out of range", func() []byte {
			return xattrImage(func(r *rawImage) {
				r.kvEntry(0, "a", "1", 0, false)
				r.xids = [][3]uint64{}
			})
		}, nil, "xattr id 0 of 0"},
		{"xattr type 3", func() []byte {
			return xattrImage(func(r *rawImage) {
				r.kvEntry(3, "a", "1", 0, false)
				r.xids = [][3]uint64{{0, 1, 10}}
			})
		}, nil, "xattr type 0x3"},
		{"xattr value too large", func() []byte {
			return xattrImage(func(r *rawImage) {
				r.kvEntry(0, "a", strings.Repeat("v", 70000), 0, false)
				r.xids = [][3]uint64{{0, 1, 70010}}
			})
		}, nil, "value of 70000 bytes"},
		{"one value named out of line many times", func() []byte {
			return xattrImage(func(r *rawImage) {
				v := r.kvEntry(0, "big", strings.Repeat("v", 65536), 0, false)
				start := ref(len(r.kv))
				for i := range 100 {
					r.kvEntry(0, fmt.Sprint(i), "", v, true)
				}
				r.xids = [][3]uint64{{start, 100, 1600}}
			})
		}, nil, "xattr set of more than"},
		{"out-of-line reference outside the table", func() []byte {
			return xattrImage(func(r *rawImage) {
				r.kvEntry(0, "a", "", 1<<40, true)
				r.xids = [][3]uint64{{0, 1, 16}}
			})
		}, nil, "outside the key/value table"},
		{"too deep", func() []byte {
			r := newRaw()
			child, num := r.file(0, 0xffffffff, 0, 0)
			typ := uint16(2)
			for range squashfs.MaxDepth + 1 {
				l, n := r.listing(rawEntry{"d", child, num, typ})
				child, num = r.dir(l, n)
				typ = 1
			}
			r.root = child
			return r.bytes()
		}, nil, "deeper than 4096"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := walkAll(tc.img())
			want := tc.want
			if want == nil {
				want = squashfs.ErrCorrupt
			}
			if !errors.Is(err, want) || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("Open+Walk = %v, want %v with %q", err, want, tc.msg)
			}
		})
	}
}

// rootWith is an image whose root lists entries (ref, number and type default to an empty
// regular file's).
func rootWith(entries ...rawEntry) []byte {
	r := newRaw()
	f, fn := r.file(0, 0xffffffff, 0, 0)
	for i := range entries {
		if entries[i].ref == 0 {
			entries[i].ref = f
		}
		if entries[i].num == 0 {
			entries[i].num = fn
		}
		if entries[i].typ == 0 {
			entries[i].typ = 2
		}
	}
	l, n := r.listing(entries...)
	r.root, _ = r.dir(l, n)
	return r.bytes()
}

// rootWithInode is an image whose root lists one entry "x" for the inode mk writes.
func rootWithInode(mk func(r *rawImage) (uint64, uint32, uint16)) []byte {
	r := newRaw()
	a, n, typ := mk(r)
	l, k := r.listing(rawEntry{"x", a, n, typ})
	r.root, _ = r.dir(l, k)
	return r.bytes()
}
