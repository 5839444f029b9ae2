package squashfs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
)

// markEvery is how many blocks apart File remembers where it is in a block list, so that
// a read far back in a large file does not rescan the list from its start. A File holds
// one mark (a few words) per markEvery blocks it has read past, never the whole list.
const markEvery = 1024

// File reads the content of a regular file. It is an io.Reader and an io.ReaderAt; it is
// safe for concurrent use (calls are serialised), though concurrent Reads share a position.
type File struct {
	fs      *FS
	in      *Inode
	nblocks int64

	mu    sync.Mutex
	marks []blockMark // marks[k] is block k*markEvery
	cur   blockMark   // where the last block lookup ended
	block int64       // the block data holds, or -1
	data  []byte      // decoded block: buf, or a shared fragment block's bytes
	buf   []byte      // owned: decoded data blocks
	raw   []byte      // owned: stored data blocks
	pos   int64       // of Read
}

// blockMark is a place in a file's block list.
type blockMark struct {
	block int64   // block number
	meta  metaPos // its size word in the inode table
	disk  uint64  // its data in the image
}

// OpenFile returns a reader of the content of regular file in.
func (fs *FS) OpenFile(in *Inode) (*File, error) {
	if in.Type != Reg {
		return nil, fmt.Errorf("squashfs: inode %#x is a %s, not a regular file", in.Ref, in.Type)
	}
	first := blockMark{meta: in.blocks, disk: in.start}
	return &File{fs: fs, in: in, nblocks: in.blockCount(fs.bs), marks: []blockMark{first}, cur: first, block: -1}, nil
}

// Size is the length of the content.
func (f *File) Size() int64 { return f.in.Size }

// Read reads the content from where the last Read stopped.
func (f *File) Read(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.readAt(p, f.pos)
	f.pos += int64(n)
	return n, err
}

// WriteTo writes the content from where the last Read stopped to w, a block at a time,
// without copying it through a buffer of the caller's (io.Copy uses it).
func (f *File) WriteTo(w io.Writer) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var n int64
	bs := int64(f.fs.bs)
	for f.pos < f.in.Size {
		b := f.pos / bs
		data, err := f.blockData(b)
		if err != nil {
			return n, fmt.Errorf("inode %#x (number %d): %w", f.in.Ref, f.in.Number, err)
		}
		k, err := w.Write(data[f.pos-b*bs:])
		n += int64(k)
		f.pos += int64(k)
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// ReadAt reads len(p) bytes of the content at off.
func (f *File) ReadAt(p []byte, off int64) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.readAt(p, off)
}

func (f *File) readAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("squashfs: negative offset")
	}
	size := f.in.Size
	if off >= size {
		return 0, io.EOF
	}
	bs := int64(f.fs.bs)
	n := 0
	for n < len(p) && off < size {
		b := off / bs
		data, err := f.blockData(b)
		if err != nil {
			return n, fmt.Errorf("inode %#x (number %d): %w", f.in.Ref, f.in.Number, err)
		}
		k := copy(p[n:], data[off-b*bs:])
		n += k
		off += int64(k)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// blockData returns the decoded bytes of block b of the content (the tail fragment for the
// last one, when the file has one).
func (f *File) blockData(b int64) ([]byte, error) {
	if b == f.block {
		return f.data, nil
	}
	bs := int64(f.fs.bs)
	want := min(bs, f.in.Size-b*bs)
	if b >= f.nblocks {
		tail, err := f.fs.fragment(f.in, int(want))
		if err != nil {
			return nil, err
		}
		f.block, f.data = b, tail
		return tail, nil
	}
	disk, word, err := f.locate(b)
	if err != nil {
		return nil, err
	}
	if f.buf == nil {
		f.buf = make([]byte, bs, bs+1) // room for the decoders' one byte of overrun check
	}
	out := f.buf[:want]
	f.block = -1
	if err := f.fs.dataBlock(out, &f.raw, disk, word, b); err != nil {
		return nil, err
	}
	f.block, f.data = b, out
	return out, nil
}

// dataBlock fills out with data block b, whose size word is word, stored at disk. scratch
// holds the stored bytes; it grows as needed.
func (fs *FS) dataBlock(out []byte, scratch *[]byte, disk uint64, word uint32, b int64) error {
	size := int(word &^ dataRaw)
	if size == 0 {
		clear(out) // a hole
		return nil
	}
	if size > fs.bs {
		return corrupt("data block %d at %d: stored size %d above the block size", b, disk, size)
	}
	if cap(*scratch) < size {
		*scratch = make([]byte, fs.bs)
	}
	raw := (*scratch)[:size]
	if err := fs.readAt(raw, disk); err != nil {
		return fmt.Errorf("data block %d: %w", b, err)
	}
	if word&dataRaw != 0 {
		if size != len(out) {
			return corrupt("data block %d at %d: %d bytes stored, want %d", b, disk, size, len(out))
		}
		copy(out, raw)
		return nil
	}
	got, err := fs.dec.decompress(out[:0], raw, len(out))
	if err != nil {
		return fmt.Errorf("data block %d at %d: %w", b, disk, err)
	}
	if len(got) != len(out) {
		return corrupt("data block %d at %d: decodes to %d bytes, want %d", b, disk, len(got), len(out))
	}
	if &got[0] != &out[0] {
		copy(out, got)
	}
	return nil
}

// locate finds block b in the block list: the position of its data and its size word.
func (f *File) locate(b int64) (uint64, uint32, error) {
	if f.cur.block > b || b-f.cur.block > markEvery {
		f.cur = f.marks[min(b/markEvery, int64(len(f.marks)-1))]
	}
	m, err := f.fs.metaAt(f.cur.meta.block, f.cur.meta.off, f.fs.sb.dirTable)
	if err != nil {
		return 0, 0, fmt.Errorf("block list: %w", err)
	}
	for {
		at := m.pos()
		word, err := m.u32()
		if err != nil {
			return 0, 0, fmt.Errorf("block list: %w", err)
		}
		if f.cur.block == b {
			f.cur.meta = at
			return f.cur.disk, word, nil
		}
		f.cur.disk += uint64(word &^ dataRaw)
		if f.cur.disk > f.fs.sb.bytesUsed {
			return 0, 0, corrupt("block %d lies beyond the image", f.cur.block+1)
		}
		f.cur.block++
		f.cur.meta = m.pos()
		if f.cur.block%markEvery == 0 && f.cur.block/markEvery == int64(len(f.marks)) {
			f.marks = append(f.marks, f.cur)
		}
	}
}

// fragment returns the n-byte tail of regular file in, from its fragment block.
func (fs *FS) fragment(in *Inode, n int) ([]byte, error) {
	if in.frag == noFragment {
		return nil, corrupt("the file's tail has no fragment")
	}
	data, err := fs.fragmentBlock(in.frag)
	if err != nil {
		return nil, err
	}
	if uint64(in.fragOff)+uint64(n) > uint64(len(data)) {
		return nil, corrupt("tail of %d bytes at %d beyond the %d bytes of fragment %d", n, in.fragOff, len(data), in.frag)
	}
	return data[in.fragOff : int(in.fragOff)+n], nil
}

// fragmentBlock returns decoded fragment block i.
func (fs *FS) fragmentBlock(i uint32) ([]byte, error) {
	if v, ok := fs.frags.get(i); ok {
		return v.data, nil
	}
	if i >= fs.sb.fragments {
		return nil, corrupt("fragment %d of %d", i, fs.sb.fragments)
	}
	var e [16]byte
	if err := fs.lookupEntry(fs.sb.fragmentTable, uint64(i), e[:]); err != nil {
		return nil, fmt.Errorf("fragment table: %w", err)
	}
	start, word := binary.LittleEndian.Uint64(e[:]), binary.LittleEndian.Uint32(e[8:])
	size := int(word &^ dataRaw)
	if size == 0 || size > fs.bs {
		return nil, corrupt("fragment %d: stored size %d", i, size)
	}
	var data []byte
	if word&dataRaw != 0 {
		data = make([]byte, size)
		if err := fs.readAt(data, start); err != nil {
			return nil, fmt.Errorf("fragment %d: %w", i, err)
		}
	} else {
		raw := make([]byte, size)
		if err := fs.readAt(raw, start); err != nil {
			return nil, fmt.Errorf("fragment %d: %w", i, err)
		}
		var err error
		if data, err = fs.dec.decompress(nil, raw, fs.bs); err != nil {
			return nil, fmt.Errorf("fragment %d at %d: %w", i, start, err)
		}
	}
	fs.frags.put(i, cached{data: data})
	return data, nil
}
