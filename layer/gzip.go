package layer

import (
	"encoding/binary"
	"hash/crc32"
	"io"
)

// gzipReader reads a gzip stream (RFC 1952) of one or more members (pigz and
// concatenated files produce several) with the inflater. Every member's
// CRC-32 and length are checked. After the last member the stream must end,
// or hold only zero bytes (padding, which gzip(1) accepts too); anything
// else is an error.
type gzipReader struct {
	f      *inflater
	rp     int // f.out[rp:f.op] is decoded and not yet returned
	crcPos int // f.out[crcPos:f.op] is not yet in crc
	crc    uint32
	size   uint32 // member length mod 2^32, as in the trailer
	state  gzipState
	err    error // sticky, including io.EOF

	// Random access (gzip_access.go).
	rec     *Recorder // when not nil, checkpoints are recorded into it
	base    int64     // offset in the uncompressed stream of f.out[0]
	noCheck bool      // the member was entered at a checkpoint: its trailer cannot be compared
	step    int       // when above 0, decode about this much at a time (resumed readers serve small reads)
}

type gzipState uint8

const (
	gzipBody gzipState = iota
	gzipNext           // after a member
)

// Header flags.
const (
	gzipFlagHCRC    = 1 << 1
	gzipFlagExtra   = 1 << 2
	gzipFlagName    = 1 << 3
	gzipFlagComment = 1 << 4
	gzipFlagsKnown  = 1<<5 - 1
)

// newGzipReader reads the first member header from src. rec, when not nil,
// receives checkpoints as the stream is decoded.
func newGzipReader(src io.Reader, rec *Recorder) (*gzipReader, error) {
	g := &gzipReader{f: newInflater(src), rec: rec}
	if err := g.readHeader(); err != nil {
		return nil, err
	}
	return g, nil
}

func (g *gzipReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if err := g.produce(); err != nil {
		return 0, err
	}
	n := copy(p, g.f.out[g.rp:g.f.op])
	g.rp += n
	return n, nil
}

// WriteTo hands the decoded buffer straight to w.
func (g *gzipReader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		if err := g.produce(); err != nil {
			if err == io.EOF {
				return total, nil
			}
			return total, err
		}
		n, err := w.Write(g.f.out[g.rp:g.f.op])
		g.rp += n
		total += int64(n)
		if err != nil {
			g.err = err
			return total, err
		}
	}
}

// produce makes decoded bytes available unless the stream is over.
func (g *gzipReader) produce() error {
	f := g.f
	for g.rp == f.op {
		if g.err != nil {
			return g.err
		}
		switch g.state {
		case gzipBody:
			if f.op >= outLimit {
				shift := f.slide()
				g.rp -= shift
				g.crcPos -= shift
				g.base += int64(shift)
			}
			if g.rec != nil || g.step > 0 {
				g.setStop()
			}
			done, err := f.inflate()
			if err != nil {
				g.err = err
				return err
			}
			g.crc = crc32.Update(g.crc, crc32.IEEETable, f.out[g.crcPos:f.op])
			g.size += uint32(f.op - g.crcPos)
			g.crcPos = f.op
			if done {
				if err := g.readTrailer(); err != nil {
					g.err = err
					return err
				}
				g.state = gzipNext
			} else if g.rec != nil {
				g.checkpoint()
			}
		case gzipNext:
			if err := g.nextMember(); err != nil {
				if err == io.EOF && g.rec != nil {
					g.recordEnd()
				}
				g.err = err
				return err
			}
		}
	}
	return nil
}

func (g *gzipReader) readTrailer() error {
	var t [8]byte
	for i := range t {
		b, err := g.f.readByte()
		if err != nil {
			return g.f.truncated()
		}
		t[i] = b
	}
	if g.noCheck {
		g.noCheck = false
		return nil
	}
	if binary.LittleEndian.Uint32(t[:4]) != g.crc {
		return &corruptError{offset: g.f.offset() - 8, msg: "gzip CRC-32 mismatch"}
	}
	if binary.LittleEndian.Uint32(t[4:]) != g.size {
		return &corruptError{offset: g.f.offset() - 4, msg: "gzip length mismatch"}
	}
	return nil
}

// nextMember reads what follows a member: the end (io.EOF), zero padding
// up to the end (io.EOF), or the header of another member.
func (g *gzipReader) nextMember() error {
	f := g.f
	b, err := f.readByte()
	if err != nil {
		return err // io.EOF: a clean end
	}
	f.ip-- // readByte succeeded, so the byte is still there
	if b == 0 {
		for {
			b, err := f.readByte()
			if err != nil {
				return err
			}
			if b != 0 {
				f.ip--
				return f.corrupt("unexpected data after the last gzip member")
			}
		}
	}
	if b != gzipMagic[0] {
		return f.corrupt("unexpected data after the last gzip member")
	}
	return g.readHeader()
}

// readHeader reads a member header and starts its DEFLATE stream.
func (g *gzipReader) readHeader() error {
	f := g.f
	start := f.offset()
	var crc uint32
	next := func() (byte, error) {
		b, err := f.readByte()
		if err != nil {
			return 0, f.truncated()
		}
		one := [1]byte{b}
		crc = crc32.Update(crc, crc32.IEEETable, one[:])
		return b, nil
	}
	var h [10]byte
	for i := range h {
		b, err := next()
		if err != nil {
			return err
		}
		h[i] = b
	}
	if h[0] != gzipMagic[0] || h[1] != gzipMagic[1] {
		return &corruptError{offset: start, msg: "invalid gzip header"}
	}
	if h[2] != gzipMagic[2] {
		return &corruptError{offset: start, msg: "unsupported gzip compression method"}
	}
	flags := h[3]
	if flags&^gzipFlagsKnown != 0 {
		return &corruptError{offset: start, msg: "reserved gzip header flags set"}
	}
	if flags&gzipFlagExtra != 0 {
		lo, err := next()
		if err != nil {
			return err
		}
		hi, err := next()
		if err != nil {
			return err
		}
		for range int(lo) | int(hi)<<8 {
			if _, err := next(); err != nil {
				return err
			}
		}
	}
	for _, flag := range []byte{gzipFlagName, gzipFlagComment} {
		if flags&flag == 0 {
			continue
		}
		for { // a zero-terminated string
			b, err := next()
			if err != nil {
				return err
			}
			if b == 0 {
				break
			}
		}
	}
	if flags&gzipFlagHCRC != 0 {
		want := uint16(crc)
		lo, err := next()
		if err != nil {
			return err
		}
		hi, err := next()
		if err != nil {
			return err
		}
		if uint16(lo)|uint16(hi)<<8 != want {
			return &corruptError{offset: start, msg: "gzip header CRC mismatch"}
		}
	}
	f.reset()
	g.crc, g.size, g.state = 0, 0, gzipBody
	if g.rec != nil {
		g.memberPoint(start)
	}
	return nil
}
