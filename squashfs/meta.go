package squashfs

import (
	"encoding/binary"
	"sync"
)

// Metadata blocks: tables (inodes, directories, ids, fragments, xattrs, exports) are stored
// as blocks of at most metaSize bytes, compressed or not (metaRaw), each behind a 16-bit
// header holding its stored length. metaReader reads them, metaWriter writes them.

// blockCache keeps the last decoded blocks (metadata blocks by position, fragment blocks by
// number), evicting the oldest. It is safe for concurrent use; cached slices are never
// modified.
type blockCache[K comparable] struct {
	mu   sync.Mutex
	m    map[K]cached
	ring []K
	next int
}

type cached struct {
	data  []byte
	extra uint64 // metadata: the on-disk length of the block, header included
}

func (c *blockCache[K]) init(n int) {
	c.m = make(map[K]cached, n)
	c.ring = make([]K, 0, n)
}

func (c *blockCache[K]) get(k K) (cached, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[k]
	return v, ok
}

func (c *blockCache[K]) put(k K, v cached) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[k]; ok {
		return
	}
	if len(c.ring) < cap(c.ring) {
		c.ring = append(c.ring, k)
	} else {
		delete(c.m, c.ring[c.next])
		c.ring[c.next] = k
		c.next = (c.next + 1) % len(c.ring)
	}
	c.m[k] = v
}

// metaBlock returns the decoded metadata block at pos, which must end at or before limit,
// and the position of the block after it.
func (fs *FS) metaBlock(pos, limit uint64) ([]byte, uint64, error) {
	if v, ok := fs.meta.get(pos); ok {
		if pos >= limit {
			return nil, 0, corrupt("metadata block at %d lies outside its table (ending at %d)", pos, limit)
		}
		if v.extra > limit || pos > limit-v.extra {
			return nil, 0, corrupt("metadata block at %d runs past its table's end at %d", pos, limit)
		}
		return v.data, pos + v.extra, nil
	}
	if pos > limit || limit-pos < 2 {
		return nil, 0, corrupt("metadata block at %d lies outside its table (ending at %d)", pos, limit)
	}
	var h [2]byte
	if err := fs.readAt(h[:], pos); err != nil {
		return nil, 0, err
	}
	word := binary.LittleEndian.Uint16(h[:])
	size := uint64(word &^ metaRaw)
	if size == 0 || size > metaSize {
		return nil, 0, corrupt("metadata block at %d has a length of %d", pos, size)
	}
	if size > limit-pos-2 {
		return nil, 0, corrupt("metadata block at %d runs past its table's end at %d", pos, limit)
	}
	raw := make([]byte, size)
	if err := fs.readAt(raw, pos+2); err != nil {
		return nil, 0, err
	}
	data := raw
	if word&metaRaw == 0 {
		var err error
		if data, err = fs.dec.decompress(nil, raw, metaSize); err != nil {
			return nil, 0, err
		}
	}
	if len(data) == 0 {
		return nil, 0, corrupt("metadata block at %d is empty", pos)
	}
	fs.meta.put(pos, cached{data: data, extra: 2 + size})
	return data, pos + 2 + size, nil
}

// metaPos is a place in a metadata table: a block's position in the image and an offset in
// its decoded bytes.
type metaPos struct {
	block uint64
	off   int
}

// metaReader reads a table of metadata blocks from a position on, across blocks.
type metaReader struct {
	fs    *FS
	limit uint64 // the table ends here
	block uint64
	off   int
	data  []byte
	next  uint64
	buf   [8]byte
}

// metaAt returns a reader of the table ending at limit, at offset off of the block at block.
func (fs *FS) metaAt(block uint64, off int, limit uint64) (*metaReader, error) {
	m := &metaReader{fs: fs, limit: limit}
	return m, m.seek(metaPos{block, off})
}

func (m *metaReader) seek(p metaPos) error {
	data, next, err := m.fs.metaBlock(p.block, m.limit)
	if err != nil {
		return err
	}
	if p.off < 0 || p.off > len(data) {
		return corrupt("offset %d lies beyond the %d bytes of the metadata block at %d", p.off, len(data), p.block)
	}
	m.block, m.off, m.data, m.next = p.block, p.off, data, next
	return nil
}

func (m *metaReader) pos() metaPos { return metaPos{m.block, m.off} }

// advance moves to the next block once the current one is used up.
func (m *metaReader) advance() error {
	if m.off < len(m.data) {
		return nil
	}
	return m.seek(metaPos{m.next, 0})
}

// read fills p.
func (m *metaReader) read(p []byte) error {
	for len(p) > 0 {
		if err := m.advance(); err != nil {
			return err
		}
		n := copy(p, m.data[m.off:])
		m.off += n
		p = p[n:]
	}
	return nil
}

// skip moves n bytes on.
func (m *metaReader) skip(n int64) error {
	for n > 0 {
		if err := m.advance(); err != nil {
			return err
		}
		k := min(n, int64(len(m.data)-m.off))
		m.off += int(k)
		n -= k
	}
	return nil
}

func (m *metaReader) u16() (uint16, error) {
	err := m.read(m.buf[:2])
	return binary.LittleEndian.Uint16(m.buf[:]), err
}

func (m *metaReader) u32() (uint32, error) {
	err := m.read(m.buf[:4])
	return binary.LittleEndian.Uint32(m.buf[:]), err
}

func (m *metaReader) u64() (uint64, error) {
	err := m.read(m.buf[:8])
	return binary.LittleEndian.Uint64(m.buf[:]), err
}

// metaWriter lays a stream of records out as metadata blocks: 8 KiB of records at a time,
// compressed (or stored when compression does not help), each behind a 16-bit header. Records
// may straddle blocks. The compressed table is kept in memory until it is written out.
type metaWriter struct {
	comp compressor
	cur  []byte // records of the block being filled
	out  []byte // finished blocks, headers included
	tmp  []byte
	err  error
}

func newMetaWriter(c compressor) *metaWriter {
	return &metaWriter{comp: c, cur: make([]byte, 0, metaSize)}
}

// pos is where the next record byte goes: the block's position in the table and the offset
// in its uncompressed contents. The offset is always below metaSize.
func (m *metaWriter) pos() (block uint64, off uint16) {
	return uint64(len(m.out)), uint16(len(m.cur))
}

// ref is pos as a metadata reference.
func (m *metaWriter) ref() uint64 { return metaRef(m.pos()) }

func (m *metaWriter) write(p []byte) {
	for len(p) > 0 {
		n := min(len(p), metaSize-len(m.cur))
		m.cur = append(m.cur, p[:n]...)
		p = p[n:]
		if len(m.cur) == metaSize {
			m.flush()
		}
	}
}

func (m *metaWriter) flush() {
	if len(m.cur) == 0 {
		return
	}
	var err error
	m.tmp, err = m.comp.compress(m.tmp, m.cur)
	if err != nil && m.err == nil {
		m.err = err
	}
	if err == nil && len(m.tmp) < len(m.cur) {
		m.out = binary.LittleEndian.AppendUint16(m.out, uint16(len(m.tmp)))
		m.out = append(m.out, m.tmp...)
	} else {
		m.out = binary.LittleEndian.AppendUint16(m.out, uint16(len(m.cur))|metaRaw)
		m.out = append(m.out, m.cur...)
	}
	m.cur = m.cur[:0]
}

// finish flushes the last, partial block and returns the table and its block positions.
func (m *metaWriter) finish() ([]byte, error) {
	m.flush()
	return m.out, m.err
}

// blockStarts lists the positions of the blocks of a finished table.
func blockStarts(table []byte) []uint64 {
	var starts []uint64
	for p := 0; p < len(table); {
		starts = append(starts, uint64(p))
		p += 2 + int(binary.LittleEndian.Uint16(table[p:])&^metaRaw)
	}
	return starts
}
