package layer

import (
	"bufio"
	"encoding/binary"
	"io"
	"math"

	"github.com/klauspost/compress/zstd"
)

// Frame by frame zstd decoding, for a Recorder.
//
// The decoder is the same as without a Recorder, with the same options; only its input
// changes. A zstdSplitter reads the frame structure of the stream as the bytes pass (frame
// headers and block headers, nothing is decoded) and hands the decoder one unit at a time:
// the skippable frames before a data frame, and that frame. At the end of a unit the
// splitter reports io.EOF, the decoder finishes the frame as it would at the end of a
// stream, and zstdFrameReader Resets it on the next unit. The output offset of every data
// frame is thereby exact.
//
// The splitter interprets nothing it does not have to: whatever it cannot parse (a bad
// magic number, a reserved block type, a stream cut short, an input error) it hands over
// whole, and the decoder reports it just as it would have without the splitter. Its cuts
// are where the decoder itself ends a frame: it reads a frame exactly, header, blocks and
// checksum, never beyond (klauspost/compress v1.20.4, sync mode). So the decoded bytes and
// the errors are those of Decompress without a Recorder; TestZstdRecordSameResult and
// FuzzZstdFrames compare them.

// zstdFrameMagic and the skippable range, as little-endian numbers.
const (
	zstdFrameMagic     = 0xFD2FB528
	zstdSkippableMagic = 0x184D2A50 // to 0x184D2A5F
	zstdSkippableMask  = 0xFFFFFFF0

	zstdMaxBlockSize = 128 << 10
)

type splitState uint8

const (
	splitUnitStart splitState = iota // before a skippable or data frame, or at the end
	splitBlock                       // before a block header of a data frame
	splitChecksum                    // before the checksum of a data frame
	splitFrameEnd                    // the data frame is complete: the unit ends
	splitUnitEnd                     // Read reports io.EOF until nextUnit
	splitPass                        // no more parsing: the rest of the input is one unit
)

// frameSink receives what a zstdSplitter finds.
type frameSink interface {
	frameStart(in, size int64) // a data frame of size bytes (-1: unknown) starts at byte in
	frameBytes(p []byte)       // bytes of a data frame, as they pass
	framesUnknown()            // the rest of the stream is passed on unparsed
}

// zstdSplitter is the decoder's input: br, cut into units. See the comment above.
type zstdSplitter struct {
	br    *bufio.Reader
	sink  frameSink
	pos   int64 // bytes of br passed on so far: the blob offset
	left  int64 // bytes of the current element still to pass
	state splitState
	data  bool  // the current element is part of a data frame
	crc   bool  // the current data frame ends with a checksum
	err   error // a read error met while peeking, reported by Read once br is empty
}

func (s *zstdSplitter) Read(p []byte) (int, error) {
	for s.left == 0 {
		if s.state == splitUnitEnd {
			return 0, io.EOF
		}
		s.next()
	}
	if s.err != nil && s.br.Buffered() == 0 {
		// Peek met an error: report it rather than read the source again.
		return 0, s.err
	}
	if int64(len(p)) > s.left {
		p = p[:s.left]
	}
	n, err := s.br.Read(p)
	s.pos += int64(n)
	if s.left != math.MaxInt64 {
		s.left -= int64(n)
	}
	if s.data && n > 0 {
		s.sink.frameBytes(p[:n])
	}
	return n, err
}

// nextUnit starts the next unit after the decoder finished one, and reports whether there
// is anything left to decode.
func (s *zstdSplitter) nextUnit() bool {
	if s.state != splitUnitEnd || s.left != 0 {
		return false // in pass mode, the decoder's io.EOF is the end of the input
	}
	s.state = splitUnitStart
	s.next()
	return s.state != splitUnitEnd
}

// peek returns the next n bytes, or what there is of them and the error that cut them
// short; a read error other than io.EOF is kept for Read.
func (s *zstdSplitter) peek(n int) ([]byte, bool) {
	b, err := s.br.Peek(n)
	if err != nil && err != io.EOF && s.err == nil {
		s.err = err
	}
	return b, len(b) == n
}

// pass gives up parsing: the rest of the input goes to the decoder as it is.
func (s *zstdSplitter) pass() {
	s.state, s.left, s.data = splitPass, math.MaxInt64, false
	s.sink.framesUnknown()
}

// next finds the length of the element at the current position.
func (s *zstdSplitter) next() {
	switch s.state {
	case splitUnitStart:
		b, ok := s.peek(4)
		if len(b) == 0 && s.err == nil {
			s.state = splitUnitEnd // the end of the stream
			return
		}
		if !ok {
			s.pass()
			return
		}
		magic := binary.LittleEndian.Uint32(b)
		if magic&zstdSkippableMask == zstdSkippableMagic {
			if b, ok = s.peek(8); !ok {
				s.pass()
				return
			}
			s.left, s.data = 8+int64(binary.LittleEndian.Uint32(b[4:])), false
			return
		}
		if magic != zstdFrameMagic {
			s.pass()
			return
		}
		if b, ok = s.peek(5); !ok {
			s.pass()
			return
		}
		n := zstdHeaderLen(b[4])
		if b, ok = s.peek(n); !ok {
			s.pass()
			return
		}
		s.crc = b[4]&(1<<2) != 0
		s.sink.frameStart(s.pos, zstdContentSize(b))
		s.left, s.data, s.state = int64(n), true, splitBlock
	case splitBlock:
		b, ok := s.peek(3)
		if !ok {
			s.pass()
			return
		}
		h := uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16
		size := int64(h >> 3)
		switch (h >> 1) & 3 {
		case 1: // RLE: one byte, repeated size times
			size = 1
		case 3: // reserved: the decoder rejects it
			s.pass()
			return
		}
		s.left = 3 + size
		if h&1 != 0 { // the last block
			s.state = splitFrameEnd
			if s.crc {
				s.state = splitChecksum
			}
		}
	case splitChecksum:
		s.left, s.state = 4, splitFrameEnd
	case splitFrameEnd:
		s.state, s.data = splitUnitEnd, false
	case splitPass:
		s.left = math.MaxInt64
	}
}

// zstdHeaderLen returns the length of a frame header (magic number included) from its
// Frame_Header_Descriptor.
func zstdHeaderLen(fhd byte) int {
	n := 4 + 1
	single := fhd&(1<<5) != 0
	if !single {
		n++ // Window_Descriptor
	}
	n += [4]int{0, 1, 2, 4}[fhd&3] // Dictionary_ID
	switch fhd >> 6 {              // Frame_Content_Size
	case 0:
		if single {
			n++
		}
	case 1:
		n += 2
	case 2:
		n += 4
	case 3:
		n += 8
	}
	return n
}

// zstdContentSize returns the Frame_Content_Size of the frame header h, or -1 when the
// header does not give it.
func zstdContentSize(h []byte) int64 {
	fhd := h[4]
	single := fhd&(1<<5) != 0
	at := 5 + [4]int{0, 1, 2, 4}[fhd&3]
	if !single {
		at++
	}
	switch fhd >> 6 {
	case 0:
		if single {
			return int64(h[at])
		}
		return -1
	case 1:
		return int64(binary.LittleEndian.Uint16(h[at:])) + 256
	case 2:
		return int64(binary.LittleEndian.Uint32(h[at:]))
	}
	size := binary.LittleEndian.Uint64(h[at:])
	if size > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(size)
}

// zstdFrameReader decodes a zstd stream frame by frame through a zstdSplitter, telling zs
// the output and the ends of frames.
type zstdFrameReader struct {
	dec   *zstd.Decoder
	split zstdSplitter
	zs    *zstdRec
}

func newZstdFrameReader(dec *zstd.Decoder, br *bufio.Reader, zs *zstdRec) *zstdFrameReader {
	z := &zstdFrameReader{dec: dec, zs: zs}
	z.split = zstdSplitter{br: br, sink: zs}
	dec.Reset(&z.split) // a decoder in sync mode reads nothing before Read
	return z
}

func (z *zstdFrameReader) Read(p []byte) (int, error) {
	for {
		n, err := z.dec.Read(p)
		if n > 0 {
			z.zs.output(p[:n])
		}
		if err != io.EOF {
			if err != nil {
				z.zs.failed(err)
			}
			return n, err
		}
		if !z.next() {
			z.zs.finish()
			return n, io.EOF
		}
		if n > 0 {
			return n, nil
		}
	}
}

// WriteTo lets the decoder write its own buffers to w, unit by unit.
func (z *zstdFrameReader) WriteTo(w io.Writer) (int64, error) {
	tw := &outputTee{w: w, zs: z.zs}
	var total int64
	for {
		n, err := z.dec.WriteTo(tw)
		total += n
		if err != nil {
			z.zs.failed(err)
			return total, err
		}
		if !z.next() {
			z.zs.finish()
			return total, nil
		}
	}
}

// next moves to the next unit once the decoder finished one.
func (z *zstdFrameReader) next() bool {
	z.zs.unitEnd()
	if !z.split.nextUnit() {
		return false
	}
	z.dec.Reset(&z.split)
	return true
}

// outputTee shows zs what a decoder writes to w.
type outputTee struct {
	w  io.Writer
	zs *zstdRec
}

func (t *outputTee) Write(p []byte) (int, error) {
	t.zs.output(p)
	return t.w.Write(p)
}
