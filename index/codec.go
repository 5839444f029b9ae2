package index

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
)

// The binary encoding of an Index, which the index cache keeps on disk so that the next open
// of an image skips the scan.
//
// Version 1, every integer little-endian:
//
//	header       "ocr-idx\n" | u32 version | u32 entries | u32 inodes | u32 xattr sets
//	             (besides the empty set 0) | u32 xattrs | u32 xattr bytes | u32 string bytes
//	inodes       56 bytes each: i64 mtime | i64 size | i64 offset | u32 uid | u32 gid |
//	             u32 devmajor | u32 devminor | u32 link length | u32 xattr set | i32 layer |
//	             u16 mode | u8 type | u8 zero
//	entries      12 bytes each, root first: u32 name length | u32 parent | u32 inode
//	children     entries-1 × u32: every directory's children, directories in entry order,
//	             each run sorted bytewise by name
//	xattr sets   u32 number of xattrs, for each set after 0
//	xattrs       u32 name length | u32 value length, for each xattr of those sets in order
//	xattr bytes  the names and values, in the same order
//	strings      the link targets in inode order, then the names in entry order
//
// Nothing that can be derived is stored: string offsets are running sums of the lengths; a
// directory's run of children starts where the runs of the directories before it end and is
// as long as the number of entries naming it as parent; link counts are recounted. So the
// header fixes the length of the data, an index has exactly one encoding, and decoding
// allocates a fixed number of slices whatever the number of entries.
//
// Unmarshal trusts nothing: the data may be truncated or damaged on disk. It checks every
// count against the length of the data before allocating (the tables it allocates take at
// most a few times that length), and every record as it decodes it, against the invariants
// validate lists; MarshalBinary refuses an index that breaks them. So Unmarshal accepts
// exactly the encodings MarshalBinary writes, and any index it returns is safe to use.

const (
	codecMagic   = "ocr-idx\n"
	codecVersion = 1
	headerLen    = len(codecMagic) + 7*4
	inodeLen     = 56
	entryLen     = 12
)

// maxPathLen bounds the path of any entry of an encoded index, which bounds the depth of the
// tree and with it the stack and the path strings Walk builds. overlay keeps the paths of
// tar names within Linux's PATH_MAX (4096); names created below symlinked parents can end up
// longer, so the bound is a few times that.
const maxPathLen = 16 << 10

// ErrCorrupt is returned by Unmarshal for data that is not a valid encoded index.
var ErrCorrupt = errors.New("index: corrupt encoding")

// MarshalBinary encodes the index (see AppendBinary).
func (ix *Index) MarshalBinary() ([]byte, error) {
	return ix.AppendBinary(nil)
}

// AppendBinary appends the encoding of the index to b. It fails for an index that Unmarshal
// would reject, which the Builder can produce only from unusual input (a name holding a
// slash, say, or a path longer than 16 KiB).
func (ix *Index) AppendBinary(b []byte) ([]byte, error) {
	if err := ix.validate(); err != nil {
		return nil, fmt.Errorf("index: cannot encode: %w", err)
	}
	return ix.appendEncoding(b)
}

// appendEncoding appends the encoding of the tables as they are, valid or not.
func (ix *Index) appendEncoding(b []byte) ([]byte, error) {
	var nx, xbytes, sbytes uint64
	for _, set := range ix.xsets[1:] {
		nx += uint64(len(set))
		for _, x := range set {
			xbytes += uint64(len(x.Name) + len(x.Value))
		}
	}
	for i := range ix.inodes {
		sbytes += uint64(ix.inodes[i].link.len)
	}
	for i := range ix.entries {
		sbytes += uint64(ix.entries[i].name.len)
	}
	if nx > math.MaxUint32 || xbytes > math.MaxUint32 || sbytes > math.MaxUint32 {
		return nil, fmt.Errorf("index: cannot encode: %w", ErrTooLarge)
	}
	size := encodedLen(uint64(len(ix.entries)), uint64(len(ix.inodes)), uint64(len(ix.xsets)-1), nx, xbytes, sbytes)
	b = slices.Grow(b, int(size))

	le := binary.LittleEndian
	b = append(b, codecMagic...)
	for _, v := range []uint64{codecVersion, uint64(len(ix.entries)), uint64(len(ix.inodes)),
		uint64(len(ix.xsets) - 1), nx, xbytes, sbytes} {
		b = le.AppendUint32(b, uint32(v))
	}
	var rec [inodeLen]byte
	for i := range ix.inodes {
		r := &ix.inodes[i]
		le.PutUint64(rec[0:], uint64(r.mtime))
		le.PutUint64(rec[8:], uint64(r.size))
		le.PutUint64(rec[16:], uint64(r.offset))
		le.PutUint32(rec[24:], r.uid)
		le.PutUint32(rec[28:], r.gid)
		le.PutUint32(rec[32:], r.devmajor)
		le.PutUint32(rec[36:], r.devminor)
		le.PutUint32(rec[40:], r.link.len)
		le.PutUint32(rec[44:], r.xattrs)
		le.PutUint32(rec[48:], uint32(r.layer))
		le.PutUint16(rec[52:], uint16(r.mode))
		rec[54], rec[55] = byte(r.typ), 0
		b = append(b, rec[:]...)
	}
	for i := range ix.entries {
		e := &ix.entries[i]
		le.PutUint32(rec[0:], e.name.len)
		le.PutUint32(rec[4:], uint32(e.parent))
		le.PutUint32(rec[8:], uint32(e.ino))
		b = append(b, rec[:entryLen]...)
	}
	for i := range ix.entries {
		for _, k := range ix.Children(ID(i)) {
			b = le.AppendUint32(b, uint32(k))
		}
	}
	for _, set := range ix.xsets[1:] {
		b = le.AppendUint32(b, uint32(len(set)))
	}
	for _, set := range ix.xsets[1:] {
		for _, x := range set {
			b = le.AppendUint32(b, uint32(len(x.Name)))
			b = le.AppendUint32(b, uint32(len(x.Value)))
		}
	}
	for _, set := range ix.xsets[1:] {
		for _, x := range set {
			b = append(b, x.Name...)
			b = append(b, x.Value...)
		}
	}
	for i := range ix.inodes {
		b = append(b, ix.strs[ix.inodes[i].link.off:][:ix.inodes[i].link.len]...)
	}
	for i := range ix.entries {
		b = append(b, ix.strs[ix.entries[i].name.off:][:ix.entries[i].name.len]...)
	}
	return b, nil
}

// encodedLen is the length of an encoding with these counts.
func encodedLen(entries, inodes, sets, xattrs, xbytes, sbytes uint64) uint64 {
	return uint64(headerLen) + inodes*inodeLen + entries*(entryLen+4) - 4 + sets*4 + xattrs*8 + xbytes + sbytes
}

// Unmarshal decodes an index written by MarshalBinary. It does not retain data. Data that is
// not such an encoding (truncated, damaged, of another version) fails with an error wrapping
// ErrCorrupt; an index it returns is safe for every method of Index.
func Unmarshal(data []byte) (*Index, error) {
	ix, err := decode(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return ix, nil
}

func decode(data []byte) (*Index, error) {
	if len(data) < headerLen {
		return nil, fmt.Errorf("%d bytes, shorter than the header", len(data))
	}
	if string(data[:len(codecMagic)]) != codecMagic {
		return nil, errors.New("not an encoded index")
	}
	le := binary.LittleEndian
	var h [7]uint32
	for i := range h {
		h[i] = le.Uint32(data[len(codecMagic)+4*i:])
	}
	version, nent, nino, nsets, nx, xbytes, sbytes := h[0], h[1], h[2], h[3], h[4], h[5], h[6]
	if version != codecVersion {
		return nil, fmt.Errorf("format version %d, want %d", version, codecVersion)
	}
	if nent == 0 {
		return nil, errors.New("no root entry")
	}
	// Every count is checked against the length of the data before anything is allocated.
	want := encodedLen(uint64(nent), uint64(nino), uint64(nsets), uint64(nx), uint64(xbytes), uint64(sbytes))
	if want != uint64(len(data)) {
		return nil, fmt.Errorf("%d bytes, the header describes %d", len(data), want)
	}
	rest := data[headerLen:]
	next := func(n uint64) []byte {
		s := rest[:n:n]
		rest = rest[n:]
		return s
	}
	inoSec := next(uint64(nino) * inodeLen)
	entSec := next(uint64(nent) * entryLen)
	kidSec := next(uint64(nent-1) * 4)
	setSec := next(uint64(nsets) * 4)
	xlenSec := next(uint64(nx) * 8)
	xSec := next(uint64(xbytes))
	strSec := next(uint64(sbytes))

	ix := &Index{
		entries: make([]entryRec, nent),
		inodes:  make([]inodeRec, nino),
		kids:    make([]ID, nent-1),
		strs:    bytes.Clone(strSec),
		xsets:   make([][]Xattr, nsets+1),
	}
	if err := ix.decodeXattrs(setSec, xlenSec, xSec); err != nil {
		return nil, err
	}

	if err := ix.checkXattrSets(); err != nil {
		return nil, err
	}

	// String offsets are running sums: links first, then names. Each record is checked as it
	// is decoded, while it is in the cache.
	dirs := make(bitset, (uint64(nino)+63)/64)
	var off uint64
	for i := range ix.inodes {
		b := inoSec[:inodeLen:inodeLen]
		inoSec = inoSec[inodeLen:]
		r := &ix.inodes[i]
		r.mtime = int64(le.Uint64(b[0:]))
		r.size = int64(le.Uint64(b[8:]))
		r.offset = int64(le.Uint64(b[16:]))
		r.uid = le.Uint32(b[24:])
		r.gid = le.Uint32(b[28:])
		r.devmajor = le.Uint32(b[32:])
		r.devminor = le.Uint32(b[36:])
		n := le.Uint32(b[40:])
		r.xattrs = le.Uint32(b[44:])
		r.layer = int32(le.Uint32(b[48:]))
		r.mode = uint32(le.Uint16(b[52:]))
		r.typ = Type(b[54])
		if b[55] != 0 {
			return nil, fmt.Errorf("inode %d: nonzero padding", i)
		}
		if off+uint64(n) > uint64(sbytes) {
			return nil, fmt.Errorf("inode %d: link target runs past the string table", i)
		}
		r.link = strRef{off: uint32(off), len: n}
		off += uint64(n)
		if p := ix.inodeProblem(r); p != "" {
			return nil, fmt.Errorf("inode %d: %s", i, p)
		}
		if r.typ == Dir {
			dirs.set(uint32(i))
		}
	}
	// The names follow the link targets: look for slashes and NULs in all of them at once.
	if names := ix.strs[off:]; bytes.IndexByte(names, '/') >= 0 || bytes.IndexByte(names, 0) >= 0 {
		return nil, errors.New("a name holds a slash or NUL")
	}
	plen := make([]uint32, nent)
	for i := range ix.entries {
		b := entSec[:entryLen:entryLen]
		entSec = entSec[entryLen:]
		e := &ix.entries[i]
		n := le.Uint32(b[0:])
		e.parent = ID(le.Uint32(b[4:]))
		e.ino = InodeID(le.Uint32(b[8:]))
		if off+uint64(n) > uint64(sbytes) {
			return nil, fmt.Errorf("entry %d: name runs past the string table", i)
		}
		e.name = strRef{off: uint32(off), len: n}
		off += uint64(n)
		if i == 0 {
			if err := ix.checkRoot(); err != nil {
				return nil, err
			}
			continue
		}
		if err := ix.checkEntry(i, plen, false); err != nil {
			return nil, err
		}
		ix.entries[e.parent].nkids++
	}
	if off != uint64(sbytes) {
		return nil, fmt.Errorf("%d unused bytes in the string table", uint64(sbytes)-off)
	}
	for i := range ix.kids {
		ix.kids[i] = ID(le.Uint32(kidSec[4*i:]))
	}
	if err := ix.checkRuns(dirs, true); err != nil {
		return nil, err
	}
	ix.countLinks()
	return ix, nil
}

// decodeXattrs fills ix.xsets[1:] from the set sizes, the name and value lengths and the
// bytes they describe. All sets share one slice of Xattrs, and all names and values one string.
func (ix *Index) decodeXattrs(setSec, xlenSec, xSec []byte) error {
	le := binary.LittleEndian
	all := make([]Xattr, len(xlenSec)/8)
	str := string(xSec)
	var used, off uint64
	for s := 1; s < len(ix.xsets); s++ {
		n := uint64(le.Uint32(setSec[4*(s-1):]))
		if n > uint64(len(all))-used {
			return fmt.Errorf("xattr set %d: %d xattrs, only %d left", s, n, uint64(len(all))-used)
		}
		set := all[used : used+n : used+n]
		for j := range set {
			b := xlenSec[8*(used+uint64(j)):]
			nl, vl := uint64(le.Uint32(b)), uint64(le.Uint32(b[4:]))
			if off+nl+vl > uint64(len(str)) {
				return fmt.Errorf("xattr set %d: xattr %d runs past the xattr bytes", s, j)
			}
			set[j] = Xattr{Name: str[off : off+nl], Value: str[off+nl : off+nl+vl]}
			off += nl + vl
		}
		ix.xsets[s] = set
		used += n
	}
	if used != uint64(len(all)) {
		return fmt.Errorf("%d xattrs belong to no set", uint64(len(all))-used)
	}
	if off != uint64(len(str)) {
		return fmt.Errorf("%d unused xattr bytes", uint64(len(str))-off)
	}
	return nil
}

// countLinks sets every inode's link count: Builder.Finish and Unmarshal call it.
func (ix *Index) countLinks() {
	for i := range ix.entries {
		e := &ix.entries[i]
		in := &ix.inodes[e.ino]
		if in.typ == Dir {
			in.nlink += 2
			if e.parent != NoParent {
				ix.inodes[ix.entries[e.parent].ino].nlink++
			}
			continue
		}
		in.nlink++
	}
}

// validate checks everything the methods of Index rely on, and what overlay guarantees of
// the indexes it builds. Unmarshal checks the same, record by record as it decodes them,
// through the same helpers.
//
//   - the tables fit their 32-bit ids, and every string reference lies in the string table;
//   - entry 0 is the root: no parent, no name, a directory;
//   - every other entry's parent precedes it, so parent links end at the root, and Walk,
//     which descends to children only, ends too;
//   - names are not empty, ".", "..", and hold no "/" or NUL; paths are at most maxPathLen
//     bytes (which bounds the depth of the tree);
//   - every entry names an existing inode; inodes have a valid type, only permission bits in
//     their mode, a layer of NoLayer or more, a size and offset of zero or more, and an
//     existing xattr set;
//   - the runs of children lie in the child table, hold exactly the entries naming their
//     directory as parent, and are sorted strictly bytewise by name (as Child's binary search
//     expects), so every entry but the root is the child of its parent exactly once; only
//     directories have children;
//   - xattr set 0 is empty, the others are not; xattr names are not empty, hold no NUL, and are
//     sorted within their set.
//
// Link counts are not checked: Unmarshal recounts them.
func (ix *Index) validate() error {
	n := len(ix.entries)
	switch {
	case n == 0:
		return errors.New("no root entry")
	case uint64(n) >= math.MaxUint32 || uint64(len(ix.inodes)) >= math.MaxUint32 ||
		uint64(len(ix.strs)) > math.MaxUint32:
		return ErrTooLarge
	case len(ix.xsets) == 0 || len(ix.xsets[0]) != 0:
		return errors.New("xattr set 0 is not empty")
	}
	if err := ix.checkXattrSets(); err != nil {
		return err
	}
	dirs := make(bitset, (len(ix.inodes)+63)/64)
	for i := range ix.inodes {
		r := &ix.inodes[i]
		if p := ix.inodeProblem(r); p != "" {
			return fmt.Errorf("inode %d: %s", i, p)
		}
		if r.typ == Dir {
			dirs.set(uint32(i))
		}
	}
	if !ix.inTable(ix.entries[0].name) {
		return errors.New("the root's name lies outside the string table")
	}
	if err := ix.checkRoot(); err != nil {
		return err
	}
	plen := make([]uint32, n)
	for i := 1; i < n; i++ {
		if !ix.inTable(ix.entries[i].name) {
			return fmt.Errorf("entry %d: name outside the string table", i)
		}
		if err := ix.checkEntry(i, plen, true); err != nil {
			return err
		}
	}
	if len(ix.kids) != n-1 {
		return fmt.Errorf("%d children for %d entries", len(ix.kids), n)
	}
	return ix.checkRuns(dirs, false)
}

// checkXattrSets checks that set 0 is the only empty one, and the names within each.
func (ix *Index) checkXattrSets() error {
	for s := 1; s < len(ix.xsets); s++ {
		set := ix.xsets[s]
		if len(set) == 0 {
			return fmt.Errorf("xattr set %d is empty", s)
		}
		for j, x := range set {
			if x.Name == "" || strings.IndexByte(x.Name, 0) >= 0 {
				return fmt.Errorf("xattr set %d: bad name %q", s, x.Name)
			}
			if j > 0 && set[j-1].Name > x.Name {
				return fmt.Errorf("xattr set %d: %q sorted after %q", s, x.Name, set[j-1].Name)
			}
		}
	}
	return nil
}

// inodeProblem says what is wrong with r, or "".
func (ix *Index) inodeProblem(r *inodeRec) string {
	switch {
	case r.typ < Dir || r.typ > Socket:
		return "bad type"
	case r.mode&^07777 != 0:
		return "mode holds more than permission bits"
	case r.layer < NoLayer:
		return "bad layer"
	case r.size < 0:
		return "negative size"
	case r.offset < 0:
		return "negative offset"
	case uint64(r.xattrs) >= uint64(len(ix.xsets)):
		return "no such xattr set"
	case !ix.inTable(r.link):
		return "link target outside the string table"
	}
	return ""
}

// checkRoot checks entry 0, whose name lies in the string table and whose inodes are checked.
func (ix *Index) checkRoot() error {
	root := &ix.entries[0]
	switch {
	case root.parent != NoParent:
		return errors.New("the first entry is not the root")
	case root.name.len != 0:
		return errors.New("the root has a name")
	case uint64(root.ino) >= uint64(len(ix.inodes)):
		return fmt.Errorf("the root names inode %d of %d", root.ino, len(ix.inodes))
	case ix.inodes[root.ino].typ != Dir:
		return fmt.Errorf("the root is a %s", ix.inodes[root.ino].typ)
	}
	return nil
}

// checkEntry checks entry i > 0, whose name lies in the string table and whose parent's path
// length is in plen, and records its own there. With scanNames it looks for slashes and NULs
// in the name; without, the caller has.
func (ix *Index) checkEntry(i int, plen []uint32, scanNames bool) error {
	e := &ix.entries[i]
	if uint64(e.ino) >= uint64(len(ix.inodes)) {
		return fmt.Errorf("entry %d: inode %d of %d", i, e.ino, len(ix.inodes))
	}
	if uint64(e.parent) >= uint64(i) {
		return fmt.Errorf("entry %d: parent %d does not precede it", i, e.parent)
	}
	name := ix.bytes(e.name)
	if len(name) <= 2 && (len(name) == 0 || name[0] == '.' && (len(name) == 1 || name[1] == '.')) ||
		scanNames && (bytes.IndexByte(name, '/') >= 0 || bytes.IndexByte(name, 0) >= 0) {
		return fmt.Errorf("entry %d: bad name %q", i, name)
	}
	l := uint64(plen[e.parent]) + uint64(len(name))
	if e.parent != Root {
		l++ // the slash
	}
	if l > maxPathLen {
		return fmt.Errorf("entry %d: path longer than %d bytes", i, maxPathLen)
	}
	plen[i] = uint32(l)
	return nil
}

// checkRuns checks the runs of children of every entry, whose inode ids are checked; dirs
// holds the directory inodes. With layout, it first places each run where the previous one
// ends, as Unmarshal lays them out.
func (ix *Index) checkRuns(dirs bitset, layout bool) error {
	n := uint64(len(ix.entries))
	var start, total uint64
	for i := range ix.entries {
		e := &ix.entries[i]
		if layout {
			e.kids = uint32(start)
			start += uint64(e.nkids)
		}
		if e.nkids == 0 {
			continue
		}
		end := uint64(e.kids) + uint64(e.nkids)
		if end > uint64(len(ix.kids)) {
			return fmt.Errorf("entry %d: children outside the child table", i)
		}
		if !dirs.has(uint32(e.ino)) {
			return fmt.Errorf("entry %d: a %s with children", i, ix.inodes[e.ino].typ)
		}
		total += uint64(e.nkids)
		var prev []byte
		for j, k := range ix.kids[e.kids:end] {
			if uint64(k) >= n {
				return fmt.Errorf("entry %d: child %d of %d entries", i, k, n)
			}
			c := &ix.entries[k]
			if c.parent != ID(i) {
				return fmt.Errorf("entry %d: child %d has parent %d", i, k, c.parent)
			}
			name := ix.bytes(c.name)
			if j > 0 && !less(prev, name) {
				return fmt.Errorf("entry %d: child %q sorted after %q", i, name, prev)
			}
			prev = name
		}
	}
	if total != n-1 {
		return fmt.Errorf("%d children for %d entries", total, n)
	}
	return nil
}

// less reports whether a sorts bytewise before b. Names are short and siblings often share a
// prefix: comparing eight bytes at a time inline beats a call to the runtime's comparison.
func less(a, b []byte) bool {
	for len(a) >= 8 && len(b) >= 8 {
		x, y := binary.BigEndian.Uint64(a), binary.BigEndian.Uint64(b)
		if x != y {
			return x < y
		}
		a, b = a[8:], b[8:]
	}
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return len(a) < len(b)
}

// bitset is a set of small integers.
type bitset []uint64

func (s bitset) set(i uint32)      { s[i/64] |= 1 << (i % 64) }
func (s bitset) has(i uint32) bool { return s[i/64]&(1<<(i%64)) != 0 }

func (ix *Index) inTable(r strRef) bool {
	return uint64(r.off)+uint64(r.len) <= uint64(len(ix.strs))
}

// bytes is the string r refers to, without copying it.
func (ix *Index) bytes(r strRef) []byte { return ix.strs[r.off : r.off+r.len] }
