package layer

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
)

// The inflater decodes raw DEFLATE data (RFC 1951). It is ours rather than
// compress/flate's or klauspost's because decompression is the hot path of
// every export: decoding into one flat buffer, refilling the bit buffer
// eight bytes at a time and resolving a length with its extra bits in one
// table lookup make it markedly faster than both (see BenchmarkDecompress),
// and it knows the exact bit position of every block boundary, which gzip
// checkpoints for random access need.
//
// Output goes to out[op:]; out[histStart:op] is the history that matches
// may copy from. The owner delivers out[...:op] and calls slide when the
// buffer is full. Input is buffered in in; at the end of the source, zero
// padding is appended so the decoding loop never checks for the end, and
// any bit consumed past the real end means the stream was truncated.

const (
	windowSize = 32 << 10 // DEFLATE's largest distance

	outChunk = 1 << 20                            // output decoded between deliveries
	outSlack = 512                                // room for a match that starts at the limit, plus 16-byte overcopy
	outSize  = windowSize + outChunk + outSlack   // total buffer
	outLimit = windowSize + outChunk              // decoding stops once op reaches this
	inSize   = 256 << 10                          // input buffer
	inPad    = 32                                 // zero bytes appended at the end of the source
	inMargin = 64                                 // refill when fewer unread bytes remain
	maxMatch = 258                                // longest match
	_        = uint(outSlack - maxMatch - 16 - 3) // compile-time check: the slack suffices
)

type blockState uint8

const (
	stateHeader blockState = iota
	stateStored
	stateHuffman
	stateDone
)

// corruptError reports invalid DEFLATE or gzip data.
type corruptError struct {
	offset int64 // in the compressed stream
	msg    string
}

func (e *corruptError) Error() string {
	return fmt.Sprintf("%s at compressed byte %d", e.msg, e.offset)
}

type inflater struct {
	src    io.Reader
	srcErr error  // io.EOF or the source's error, once it has returned one
	in     []byte // in[ip:end] unread input; in[end:] zero padding once srcErr is set
	ip     int
	end    int
	inBase int64 // stream offset of in[0]
	bits   uint64
	nb     uint // valid bits in bits; higher bits hold the following input

	out       []byte
	op        int
	histStart int // matches may not reach below this (start of the stream)

	state      blockState
	final      bool
	stopAt     int64 // inflate also returns at a block header at or after this bit offset
	stopOut    int   // inflate also returns at a block header once op reaches this
	storedLeft int
	lit        *[litTableSize]uint32
	dist       *[distTableSize]uint32
	dynLit     [litTableSize]uint32
	dynDist    [distTableSize]uint32
}

func newInflater(src io.Reader) *inflater {
	return &inflater{
		src:     src,
		in:      make([]byte, 0, inSize),
		out:     make([]byte, outSize),
		stopAt:  math.MaxInt64,
		stopOut: math.MaxInt,
	}
}

// bitPos is the position in the compressed stream of the next unconsumed bit.
func (f *inflater) bitPos() int64 {
	return f.inBase*8 + int64(f.ip)*8 - int64(f.nb)
}

// offset is the position in the compressed stream of the byte holding the
// next unconsumed bit.
func (f *inflater) offset() int64 {
	return f.inBase + (int64(f.ip)*8-int64(f.nb))/8
}

func (f *inflater) corrupt(msg string) error {
	if f.overrun() {
		return f.truncated()
	}
	return &corruptError{offset: f.offset(), msg: msg}
}

// overrun reports whether decoding consumed bits past the end of the input.
func (f *inflater) overrun() bool {
	return f.srcErr != nil && f.ip*8-int(f.nb) > f.end*8
}

func (f *inflater) truncated() error {
	if f.srcErr != nil && f.srcErr != io.EOF {
		return f.srcErr
	}
	return io.ErrUnexpectedEOF
}

// fill reads more input. It keeps the 8 bytes before ip, which unread may
// give back, and at the end of the source appends the zero padding.
func (f *inflater) fill() {
	if f.srcErr != nil {
		return
	}
	if keep := min(f.ip, 8); f.ip > keep {
		shift := f.ip - keep
		n := copy(f.in[:cap(f.in)], f.in[shift:f.end])
		f.in = f.in[:n]
		f.ip = keep
		f.end = n
		f.inBase += int64(shift)
	}
	for tries := 0; ; tries++ {
		n, err := f.src.Read(f.in[f.end : cap(f.in)-inPad])
		f.end += n
		f.in = f.in[:f.end]
		if err == nil && n == 0 && tries == 100 {
			err = io.ErrNoProgress
		}
		if err != nil {
			f.srcErr = err
			f.in = f.in[:f.end+inPad]
			clear(f.in[f.end:])
			return
		}
		if n > 0 {
			return
		}
	}
}

// unread drops the bits of a partial byte and returns the whole bytes still
// in the bit buffer to the input, for reading byte-aligned data.
func (f *inflater) unread() {
	f.ip -= int(f.nb / 8)
	f.bits, f.nb = 0, 0
}

// readByte reads one byte of byte-aligned input (the bit buffer must be
// empty). At the end of the input it returns io.EOF, or the source's error.
func (f *inflater) readByte() (byte, error) {
	for f.ip >= f.end {
		if f.srcErr != nil {
			return 0, f.srcErr
		}
		f.fill()
	}
	b := f.in[f.ip]
	f.ip++
	return b, nil
}

// need makes at least n (<= 56) bits available, reading into the padding
// if it must; overrun tells afterwards whether that happened.
func (f *inflater) need(n uint) error {
	for f.nb < n {
		if f.ip >= len(f.in) {
			if f.srcErr != nil {
				return f.truncated()
			}
			f.fill()
			continue
		}
		f.bits |= uint64(f.in[f.ip]) << f.nb
		f.ip++
		f.nb += 8
	}
	return nil
}

func (f *inflater) consume(n uint) {
	f.bits >>= n
	f.nb -= n
}

// reset prepares for a new DEFLATE stream starting at the current input
// position; output continues at op without history.
func (f *inflater) reset() {
	f.state = stateHeader
	f.final = false
	f.histStart = f.op
}

// slide moves the history to the front of out so that decoding can go on.
// It returns how far the output moved.
func (f *inflater) slide() int {
	keep := min(f.op-f.histStart, windowSize)
	shift := f.op - keep
	copy(f.out, f.out[shift:f.op])
	f.op = keep
	f.histStart = max(f.histStart-shift, 0)
	return shift
}

// inflate decodes until op reaches outLimit, the stream ends (done), or
// a block header starts at or after bit offset stopAt or once op has
// reached stopOut (gzip checkpoints stop there).
func (f *inflater) inflate() (done bool, err error) {
	for f.state != stateDone {
		if f.op >= outLimit {
			return false, nil
		}
		switch f.state {
		case stateHeader:
			if f.bitPos() >= f.stopAt || f.op >= f.stopOut {
				return false, nil
			}
			if err := f.blockHeader(); err != nil {
				return false, err
			}
		case stateStored:
			if f.storedLeft == 0 {
				f.endBlock()
				continue
			}
			if f.ip >= f.end {
				if f.srcErr != nil {
					return false, f.truncated()
				}
				f.fill()
				continue
			}
			n := min(f.storedLeft, f.end-f.ip, outLimit-f.op)
			copy(f.out[f.op:], f.in[f.ip:f.ip+n])
			f.op += n
			f.ip += n
			f.storedLeft -= n
		case stateHuffman:
			if f.end-f.ip < inMargin && f.srcErr == nil {
				f.fill()
				continue
			}
			if err := f.huffman(); err != nil {
				return false, err
			}
			if f.overrun() {
				return false, f.truncated()
			}
		}
	}
	f.unread()
	if f.overrun() {
		return false, f.truncated()
	}
	return true, nil
}

func (f *inflater) endBlock() {
	if f.final {
		f.state = stateDone
	} else {
		f.state = stateHeader
	}
}

func (f *inflater) blockHeader() error {
	if err := f.need(3); err != nil {
		return err
	}
	f.final = f.bits&1 != 0
	kind := f.bits >> 1 & 3
	f.consume(3)
	switch kind {
	case 0: // stored
		f.unread() // skip to the byte boundary
		var hdr [4]byte
		for i := range hdr {
			b, err := f.readByte()
			if err != nil {
				return f.truncated()
			}
			hdr[i] = b
		}
		length := binary.LittleEndian.Uint16(hdr[:2])
		if length != ^binary.LittleEndian.Uint16(hdr[2:]) {
			return f.corrupt("stored block length does not match its complement")
		}
		f.storedLeft = int(length)
		f.state = stateStored
	case 1:
		f.lit, f.dist = &fixedLit, &fixedDist
		f.state = stateHuffman
	case 2:
		if err := f.dynamicHeader(); err != nil {
			return err
		}
		f.lit, f.dist = &f.dynLit, &f.dynDist
		f.state = stateHuffman
	default:
		return f.corrupt("invalid block type")
	}
	if f.overrun() {
		return f.truncated()
	}
	return nil
}

// clenOrder is the order in which code length code lengths are stored.
var clenOrder = [19]uint8{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}

func (f *inflater) dynamicHeader() error {
	if err := f.need(14); err != nil {
		return err
	}
	nlit := int(f.bits&0x1f) + 257
	ndist := int(f.bits>>5&0x1f) + 1
	nclen := int(f.bits>>10&0xf) + 4
	f.consume(14)
	if nlit > 286 || ndist > 30 {
		return f.corrupt("too many literal/length or distance codes")
	}
	var clen [19]uint8
	for _, s := range clenOrder[:nclen] {
		if err := f.need(3); err != nil {
			return err
		}
		clen[s] = uint8(f.bits & 7)
		f.consume(3)
	}
	var clenTable [1 << clenTableBits]uint32
	if !buildTable(clenTable[:], clenTableBits, clen[:], clenTemplates[:]) {
		return f.corrupt("invalid code length code")
	}

	var lengths [286 + 30]uint8
	n := nlit + ndist
	for i := 0; i < n; {
		if err := f.need(7 + 7); err != nil {
			return err
		}
		e := clenTable[f.bits&(1<<clenTableBits-1)]
		if e&entrySpecial != 0 {
			return f.corrupt("invalid code length symbol")
		}
		f.consume(uint(e & entryTotal))
		sym := uint8(e >> 16)
		var rep int
		var val uint8
		switch sym {
		default:
			lengths[i] = sym
			i++
			continue
		case 16:
			if i == 0 {
				return f.corrupt("repeated code length with nothing before it")
			}
			rep, val = 3+int(f.bits&3), lengths[i-1]
			f.consume(2)
		case 17:
			rep = 3 + int(f.bits&7)
			f.consume(3)
		case 18:
			rep = 11 + int(f.bits&0x7f)
			f.consume(7)
		}
		if i+rep > n {
			return f.corrupt("code lengths overflow the alphabet")
		}
		for ; rep > 0; rep-- {
			lengths[i] = val
			i++
		}
	}
	if f.overrun() {
		return f.truncated()
	}
	if !buildTable(f.dynLit[:], litTableBits, lengths[:nlit], litTemplates[:]) {
		return f.corrupt("invalid literal/length code")
	}
	if !buildTable(f.dynDist[:], distTableBits, lengths[nlit:n], distTemplates[:]) {
		return f.corrupt("invalid distance code")
	}
	return nil
}

// huffman decodes symbols of a Huffman block until the block ends, the
// output reaches outLimit or fewer than 8 input bytes (counting padding)
// remain. Each round refills the bit buffer to at least 56 bits, enough for
// the longest length and distance codes with their extra bits (48).
func (f *inflater) huffman() error {
	in, ip := f.in, f.ip
	out, op := f.out, f.op
	bitBuf, nb := f.bits, f.nb
	lit, dist := f.lit, f.dist
	histStart := f.histStart
	inLimit := len(in) - 8
	var err error

	for ip <= inLimit && op < outLimit {
		bitBuf |= binary.LittleEndian.Uint64(in[ip:]) << (nb & 63)
		ip += int((63 - nb) >> 3)
		nb |= 56

		// Up to three literals per refill: a code takes at most 15 bits.
		e := lit[bitBuf&(1<<litTableBits-1)]
		if e&entrySub != 0 {
			e = lit[e>>16+uint32(bitBuf>>litTableBits)&(1<<(e>>8&0x1f)-1)]
		}
		if e&entryLiteral != 0 {
			bitBuf >>= e & entryTotal
			nb -= uint(e & entryTotal)
			out[op] = byte(e >> 16)
			op++
			e = lit[bitBuf&(1<<litTableBits-1)]
			if e&entrySub != 0 {
				e = lit[e>>16+uint32(bitBuf>>litTableBits)&(1<<(e>>8&0x1f)-1)]
			}
			if e&entryLiteral != 0 {
				bitBuf >>= e & entryTotal
				nb -= uint(e & entryTotal)
				out[op] = byte(e >> 16)
				op++
				e = lit[bitBuf&(1<<litTableBits-1)]
				if e&entrySub != 0 {
					e = lit[e>>16+uint32(bitBuf>>litTableBits)&(1<<(e>>8&0x1f)-1)]
				}
				if e&entryLiteral != 0 {
					bitBuf >>= e & entryTotal
					nb -= uint(e & entryTotal)
					out[op] = byte(e >> 16)
					op++
					continue
				}
			}
			// A length and distance need up to 48 bits: refill. The
			// entry stays valid, as a refill only adds bits above nb.
			if ip > inLimit {
				break
			}
			bitBuf |= binary.LittleEndian.Uint64(in[ip:]) << (nb & 63)
			ip += int((63 - nb) >> 3)
			nb |= 56
		}
		if e&entrySpecial != 0 {
			if e>>16 != 0 {
				f.ip, f.nb = ip, nb
				err = f.corrupt("invalid literal/length code")
				break
			}
			bitBuf >>= e & entryTotal // end of block
			nb -= uint(e & entryTotal)
			f.endBlock()
			break
		}
		total := e & entryTotal
		length := int(e>>16) + int(bitBuf&(1<<(total&63)-1)>>(e>>8&0x1f))
		bitBuf >>= total & 63
		nb -= uint(total)

		d := dist[bitBuf&(1<<distTableBits-1)]
		if d&entrySub != 0 {
			d = dist[d>>16+uint32(bitBuf>>distTableBits)&(1<<(d>>8&0x1f)-1)]
		}
		if d&entrySpecial != 0 {
			f.ip, f.nb = ip, nb
			err = f.corrupt("invalid distance code")
			break
		}
		total = d & entryTotal
		distance := int(d>>16) + int(bitBuf&(1<<(total&63)-1)>>(d>>8&0x1f))
		bitBuf >>= total & 63
		nb -= uint(total)
		if distance > op-histStart {
			f.ip, f.nb = ip, nb
			err = f.corrupt("distance too far back")
			break
		}

		src := op - distance
		switch {
		case distance >= 8:
			// 8-byte copies, possibly past the match end (into slack);
			// each reads bytes at least 8 behind, so all are final.
			dst := out[op : op+length+16]
			s := out[src : src+length+16]
			for i := 0; i < length; i += 16 {
				binary.LittleEndian.PutUint64(dst[i:], binary.LittleEndian.Uint64(s[i:]))
				binary.LittleEndian.PutUint64(dst[i+8:], binary.LittleEndian.Uint64(s[i+8:]))
			}
		case distance == 1:
			v := uint64(out[src]) * 0x0101010101010101
			dst := out[op : op+length+8]
			for i := 0; i < length; i += 8 {
				binary.LittleEndian.PutUint64(dst[i:], v)
			}
		default:
			dst := out[op : op+length]
			for i := range dst {
				dst[i] = out[src+i]
			}
		}
		op += length
	}
	f.ip, f.op, f.bits, f.nb = ip, op, bitBuf, nb
	return err
}
