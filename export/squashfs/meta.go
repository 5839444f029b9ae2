package squashfs

import "encoding/binary"

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
