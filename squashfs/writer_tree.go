package squashfs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/ocirender/ocirender/index"
)

// builder turns the index into inodes, directories and tables.
//
// Inodes are numbered, and written, in post-order: a directory's subdirectories (each with its
// whole subtree) first, then its other entries in name order, then the directory itself, so
// every directory listing can name the inodes it lists and the root comes last.
type builder struct {
	ix   *index.Index
	bs   int
	comp compressor
	opts Options

	num    []uint32 // inode number of each index inode (0 = not numbered yet)
	fileOf []int32  // regular inode -> files
	files  []fileRec
	count  uint32

	ids   []uint32
	idIdx map[uint32]uint16

	xattrs xattrTable

	mkfsTime uint32
	clamped  int // inodes whose mtime squashfs cannot hold

	// Filled by writeTree.
	inodes, dirs *metaWriter
	linkRef      map[index.InodeID]uint64 // inodes with several names, once written
	exportRefs   []uint64                 // inode number - 1 -> inode reference
}

func newBuilder(ix *index.Index, bs int, comp compressor, opts Options) *builder {
	return &builder{ix: ix, bs: bs, comp: comp, opts: opts, idIdx: map[uint32]uint16{}}
}

// plan numbers the inodes, gathers the ids, the xattr sets and the regular files.
func (b *builder) plan() error {
	b.num = make([]uint32, b.ix.Inodes())
	b.fileOf = make([]int32, b.ix.Inodes())
	b.xattrs.init(b.comp, b.opts.Notice)
	var newest int64
	if err := b.number(index.Root, &newest); err != nil {
		return err
	}
	if b.clamped > 1 && b.opts.Notice != nil {
		b.opts.Notice(fmt.Sprintf("%d mtimes outside 1970..2106 clamped in all", b.clamped))
	}
	if t := b.opts.MkfsTime; !t.IsZero() {
		b.mkfsTime = clampTime(t.Unix())
	} else {
		b.mkfsTime = clampTime(floorDiv(newest, 1e9))
	}
	return nil
}

func (b *builder) number(d index.ID, newest *int64) error {
	kids := b.ix.Children(d)
	for _, k := range kids {
		if n := b.ix.Name(k); len(n) > maxNameLen {
			return fmt.Errorf("squashfs: %s: name longer than %d bytes", b.ix.Path(k), maxNameLen)
		}
		if b.ix.Type(k) == index.Dir {
			if err := b.number(k, newest); err != nil {
				return err
			}
		}
	}
	for _, k := range kids {
		if b.ix.Type(k) != index.Dir {
			if err := b.numberInode(k, newest); err != nil {
				return err
			}
		}
	}
	return b.numberInode(d, newest)
}

func (b *builder) numberInode(id index.ID, newest *int64) error {
	ino := b.ix.Ino(id)
	if b.num[ino] != 0 {
		return nil // another name of an inode seen before
	}
	if b.count == math.MaxUint32-1 {
		return errors.New("squashfs: too many inodes")
	}
	b.count++
	b.num[ino] = b.count
	in := b.ix.Inode(ino)
	*newest = max(*newest, in.Mtime)
	if in.Mtime < 0 || in.Mtime >= (math.MaxUint32+1)*1e9 {
		if b.clamped == 0 && b.opts.Notice != nil {
			b.opts.Notice(fmt.Sprintf("%s: mtime %s is outside what squashfs stores (1970..2106): clamped",
				b.ix.Path(id), time.Unix(0, in.Mtime).UTC().Format(time.RFC3339)))
		}
		b.clamped++
	}
	for _, id := range [2]uint32{in.UID, in.GID} {
		if _, ok := b.idIdx[id]; !ok {
			if len(b.ids) == maxIDs {
				return ErrTooManyIDs
			}
			b.idIdx[id] = uint16(len(b.ids))
			b.ids = append(b.ids, id)
		}
	}
	if err := b.xattrs.add(in.Xattrs, func() string { return b.ix.Path(id) }); err != nil {
		return err
	}
	switch in.Type {
	case index.Reg:
		b.fileOf[ino] = int32(len(b.files))
		b.files = append(b.files, fileRec{layer: int32(in.Layer), offset: in.Offset, size: in.Size,
			frag: noFragment, dupOf: -1})
	case index.Char, index.Block:
		if in.Devmajor > 0xfff || in.Devminor > 0xfffff {
			return fmt.Errorf("squashfs: %s: device %d,%d does not fit squashfs's 12-bit major, 20-bit minor",
				b.ix.Path(id), in.Devmajor, in.Devminor)
		}
	case index.Dir, index.Symlink, index.Fifo, index.Socket:
	default:
		return fmt.Errorf("squashfs: %s: unknown file type %s", b.ix.Path(id), in.Type)
	}
	return nil
}

// dataOrder lists the files by (layer, offset): each layer is read front to back.
func (b *builder) dataOrder() []int32 {
	order := make([]int32, len(b.files))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortStableFunc(order, func(x, y int32) int {
		fx, fy := &b.files[x], &b.files[y]
		if fx.layer != fy.layer {
			return int(fx.layer) - int(fy.layer)
		}
		switch {
		case fx.offset < fy.offset:
			return -1
		case fx.offset > fy.offset:
			return 1
		}
		return 0
	})
	return order
}

// resolveDups gives duplicate files the blocks of their originals.
func (b *builder) resolveDups() {
	for i := range b.files {
		if d := b.files[i].dupOf; d >= 0 {
			o := &b.files[d]
			b.files[i].start, b.files[i].blocks, b.files[i].sparse = o.start, o.blocks, o.sparse
		}
	}
}

func clampTime(sec int64) uint32 {
	return uint32(min(max(sec, 0), math.MaxUint32))
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// kidRef is what a directory listing needs of one entry.
type kidRef struct {
	name string
	ref  uint64 // inode reference
	num  uint32
	typ  Type // basic type
}

// dirIndex is one entry of a directory index.
type dirIndex struct {
	offset uint32 // of the header within the listing
	block  uint32 // directory table position of the metadata block holding the header
	name   string // first name after the header
}

// writeTree writes every inode and directory listing and returns the root's reference.
func (b *builder) writeTree() (uint64, error) {
	b.inodes, b.dirs = newMetaWriter(b.comp), newMetaWriter(b.comp)
	b.linkRef = map[index.InodeID]uint64{}
	if b.opts.Exportable {
		b.exportRefs = make([]uint64, b.count)
	}
	root, err := b.writeDir(index.Root, b.count+1)
	return root.ref, err
}

func (b *builder) writeDir(d index.ID, parent uint32) (kidRef, error) {
	kids := b.ix.Children(d)
	refs := make([]kidRef, len(kids))
	self := b.num[b.ix.Ino(d)]
	for i, k := range kids {
		if b.ix.Type(k) == index.Dir {
			r, err := b.writeDir(k, self)
			if err != nil {
				return r, err
			}
			refs[i] = r
		}
	}
	for i, k := range kids {
		if b.ix.Type(k) == index.Dir {
			continue
		}
		ino := b.ix.Ino(k)
		if ref, ok := b.linkRef[ino]; ok {
			refs[i] = kidRef{ref: ref, num: b.num[ino], typ: basicType(b.ix.Type(k))}
		} else {
			r, err := b.writeInode(k, 0, nil)
			if err != nil {
				return r, err
			}
			refs[i] = r
			if b.ix.Inode(ino).Nlink > 1 {
				b.linkRef[ino] = r.ref
			}
		}
	}
	for i, k := range kids {
		refs[i].name = b.ix.Name(k)
	}
	listing := b.writeListing(refs)
	r, err := b.writeInode(d, parent, &listing)
	return r, err
}

// listing is where a directory's entries went.
type listing struct {
	block uint64
	off   uint16
	size  uint32 // bytes, headers included
	index []dirIndex
}

// writeListing writes the entries of one directory to the directory table.
func (b *builder) writeListing(kids []kidRef) listing {
	blk, off := b.dirs.pos()
	l := listing{block: blk, off: off}
	le := binary.LittleEndian
	pos := int(off) // uncompressed offset from the start of the first block
	lastBlk := -1
	var buf []byte
	for i := 0; i < len(kids); {
		hdrAt, hdrBlk := pos, pos/metaSize
		pos += 12
		first := kids[i]
		n := 0
		for i+n < len(kids) && n < maxDirCount {
			k := kids[i+n]
			delta := int64(k.num) - int64(first.num)
			if n > 0 && (k.ref>>16 != first.ref>>16 || delta < math.MinInt16 || delta > math.MaxInt16 || pos/metaSize != hdrBlk) {
				break
			}
			pos += 8 + len(k.name)
			n++
		}
		if lastBlk >= 0 && hdrBlk != lastBlk && len(l.index) < math.MaxUint16 {
			cur, _ := b.dirs.pos()
			l.index = append(l.index, dirIndex{offset: uint32(hdrAt - int(off)), block: uint32(cur), name: first.name})
		}
		lastBlk = hdrBlk
		buf = buf[:0]
		buf = le.AppendUint32(buf, uint32(n-1))
		buf = le.AppendUint32(buf, uint32(first.ref>>16))
		buf = le.AppendUint32(buf, first.num)
		for _, k := range kids[i : i+n] {
			buf = le.AppendUint16(buf, uint16(k.ref))
			buf = le.AppendUint16(buf, uint16(int16(int64(k.num)-int64(first.num))))
			buf = le.AppendUint16(buf, uint16(k.typ))
			buf = le.AppendUint16(buf, uint16(len(k.name)-1))
			buf = append(buf, k.name...)
		}
		b.dirs.write(buf)
		i += n
	}
	l.size = uint32(pos - int(off))
	return l
}

func basicType(t index.Type) Type {
	switch t {
	case index.Dir:
		return Dir
	case index.Reg:
		return Reg
	case index.Symlink:
		return Symlink
	case index.Block:
		return Block
	case index.Char:
		return Char
	case index.Fifo:
		return Fifo
	}
	return Socket
}

// writeInode writes the inode of entry id; directories pass their parent's number and listing.
func (b *builder) writeInode(id index.ID, parent uint32, l *listing) (kidRef, error) {
	ino := b.ix.Ino(id)
	in := b.ix.Inode(ino)
	num := b.num[ino]
	typ := basicType(in.Type)
	xid := b.xattrs.id(in.Xattrs)
	le := binary.LittleEndian
	var body []byte
	ext := xid != noXattr
	switch in.Type {
	case index.Dir:
		if l.size+dirSizeExtra > math.MaxUint16 || len(l.index) > 0 {
			ext = true
		}
		if ext {
			body = le.AppendUint32(body, in.Nlink)
			body = le.AppendUint32(body, l.size+dirSizeExtra)
			body = le.AppendUint32(body, uint32(l.block))
			body = le.AppendUint32(body, parent)
			body = le.AppendUint16(body, uint16(len(l.index)))
			body = le.AppendUint16(body, l.off)
			body = le.AppendUint32(body, xid)
			for _, x := range l.index {
				body = le.AppendUint32(body, x.offset)
				body = le.AppendUint32(body, x.block)
				body = le.AppendUint32(body, uint32(len(x.name)-1))
				body = append(body, x.name...)
			}
		} else {
			body = le.AppendUint32(body, uint32(l.block))
			body = le.AppendUint32(body, in.Nlink)
			body = le.AppendUint16(body, uint16(l.size+dirSizeExtra))
			body = le.AppendUint16(body, l.off)
			body = le.AppendUint32(body, parent)
		}
	case index.Reg:
		f := &b.files[b.fileOf[ino]]
		if in.Nlink > 1 || f.sparse > 0 || f.size > math.MaxUint32 || f.start > math.MaxUint32 {
			ext = true
		}
		if ext {
			body = le.AppendUint64(body, f.start)
			body = le.AppendUint64(body, uint64(f.size))
			body = le.AppendUint64(body, f.sparse)
			body = le.AppendUint32(body, in.Nlink)
			body = le.AppendUint32(body, f.frag)
			body = le.AppendUint32(body, f.fragOff)
			body = le.AppendUint32(body, xid)
		} else {
			body = le.AppendUint32(body, uint32(f.start))
			body = le.AppendUint32(body, f.frag)
			body = le.AppendUint32(body, f.fragOff)
			body = le.AppendUint32(body, uint32(f.size))
		}
		for _, w := range f.blocks {
			body = le.AppendUint32(body, w)
		}
	case index.Symlink:
		body = le.AppendUint32(body, in.Nlink)
		body = le.AppendUint32(body, uint32(len(in.Link)))
		body = append(body, in.Link...)
		if ext {
			body = le.AppendUint32(body, xid)
		}
	case index.Char, index.Block:
		body = le.AppendUint32(body, in.Nlink)
		body = le.AppendUint32(body, encodeDev(in.Devmajor, in.Devminor))
		if ext {
			body = le.AppendUint32(body, xid)
		}
	default: // fifo, socket
		body = le.AppendUint32(body, in.Nlink)
		if ext {
			body = le.AppendUint32(body, xid)
		}
	}
	t := typ
	if ext {
		t += extended
	}
	hdr := make([]byte, 0, 16+len(body))
	hdr = le.AppendUint16(hdr, uint16(t))
	mode := uint16(in.Mode & 07777)
	if in.Type == index.Symlink {
		mode = 0o777 // what Linux reports for every symlink
	}
	hdr = le.AppendUint16(hdr, mode)
	hdr = le.AppendUint16(hdr, b.idIdx[in.UID])
	hdr = le.AppendUint16(hdr, b.idIdx[in.GID])
	hdr = le.AppendUint32(hdr, clampTime(floorDiv(in.Mtime, 1e9)))
	hdr = le.AppendUint32(hdr, num)
	ref := b.inodes.ref()
	b.inodes.write(append(hdr, body...))
	if b.exportRefs != nil {
		b.exportRefs[num-1] = ref
	}
	return kidRef{ref: ref, num: num, typ: typ}, nil
}

// writeTables writes the inode and directory tables and the lookup tables after the data,
// in the order and adjacency the kernel checks, and fills in their positions.
func (b *builder) writeTables(out *outWriter, sb *superblock, frags []fragEntry) error {
	it, err := b.inodes.finish()
	if err != nil {
		return err
	}
	dt, err := b.dirs.finish()
	if err != nil {
		return err
	}
	le := binary.LittleEndian
	sb.inodeTable = uint64(out.pos())
	out.Write(it)
	sb.dirTable = uint64(out.pos())
	out.Write(dt)

	sb.fragmentTable = uint64(out.pos()) // with no fragments: where the next table starts
	if len(frags) > 0 {
		raw := make([]byte, 0, 16*len(frags))
		for _, f := range frags {
			raw = le.AppendUint64(raw, f.start)
			raw = le.AppendUint32(raw, f.word)
			raw = le.AppendUint32(raw, 0)
		}
		if sb.fragmentTable, err = b.lookupTable(out, raw, nil); err != nil {
			return err
		}
	}
	sb.exportTable = noTable
	if b.exportRefs != nil {
		raw := make([]byte, 0, 8*len(b.exportRefs))
		for _, r := range b.exportRefs {
			raw = le.AppendUint64(raw, r)
		}
		if sb.exportTable, err = b.lookupTable(out, raw, nil); err != nil {
			return err
		}
		sb.flags |= flagExportable
	}
	raw := make([]byte, 0, 4*len(b.ids))
	for _, id := range b.ids {
		raw = le.AppendUint32(raw, id)
	}
	if sb.idTable, err = b.lookupTable(out, raw, nil); err != nil {
		return err
	}
	sb.xattrIDTable = noTable
	if b.xattrs.count() == 0 {
		sb.flags |= flagNoXattrs
	} else {
		kv, err := b.xattrs.kv.finish()
		if err != nil {
			return err
		}
		kvStart := uint64(out.pos())
		out.Write(kv)
		head := le.AppendUint64(nil, kvStart)
		head = le.AppendUint32(head, uint32(b.xattrs.count()))
		head = le.AppendUint32(head, 0)
		if sb.xattrIDTable, err = b.lookupTable(out, b.xattrs.ids, head); err != nil {
			return err
		}
	}
	return out.err
}

// lookupTable writes raw as metadata blocks, then head and the blocks' positions, and returns
// where head (or, without one, the positions) starts.
func (b *builder) lookupTable(out *outWriter, raw, head []byte) (uint64, error) {
	mw := newMetaWriter(b.comp)
	mw.write(raw)
	t, err := mw.finish()
	if err != nil {
		return 0, err
	}
	base := uint64(out.pos())
	out.Write(t)
	start := uint64(out.pos())
	idx := head
	for _, s := range blockStarts(t) {
		idx = binary.LittleEndian.AppendUint64(idx, base+s)
	}
	out.Write(idx)
	return start, out.err
}
