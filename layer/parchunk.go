package layer

import "encoding/binary"

// Speculative decoding of one chunk of a DEFLATE stream, for pargzip.go.
//
// A job searches its chunk of compressed input for the first bit offset
// where a dynamic Huffman block header (or a stored block header with a
// matching LEN/NLEN) parses, and decodes from there without knowing the
// 32 KiB of output before it. While back-references can still reach that
// unknown window, output goes into a []uint16 in which values >= 256 are
// markers: 256+i stands for byte i of the window. Once the last 32 KiB of
// output hold no marker, nothing later can reach one, and decoding goes on
// into ordinary byte buffers with the inflater's own loop. The job stops
// at the first block header at or after the end of its chunk, which is
// where the next job's search starts.
//
// Nothing here has to be right for the output to be right: the consumer
// uses a result only if its own sequential decoder stands at a block
// header exactly where the result starts, and then decoding from there is
// the same computation. A wrong guess costs time, not correctness.

const (
	// headerMargin is the most bytes a dynamic block header can span
	// (3+14+19*3 bits, then 316 code lengths of at most 7+7 bits), plus
	// room for 8-byte loads.
	headerMargin = 600

	wideSlack = maxMatch + 8 // room past the wide limit for one more match

	// A candidate is accepted once its decoding reaches another dynamic or
	// stored block header (or two more fixed ones) or produces acceptOut
	// bytes. Trials may produce trialBudget bytes in all before a job gives
	// up.
	acceptOut   = 1 << 20
	trialBudget = 16 << 20
)

// kraftClen[v] is the Kraft sum, in units of 2^-7, of four 3-bit code
// length code lengths packed in v.
var kraftClen = func() (t [1 << 12]uint16) {
	for v := range t {
		for i := 0; i < 4; i++ {
			if l := v >> (3 * i) & 7; l != 0 {
				t[v] += 128 >> l
			}
		}
	}
	return t
}()

func bitsAt(buf []byte, b int) uint64 {
	return binary.LittleEndian.Uint64(buf[b>>3:]) >> (b & 7)
}

// dynamicHeaderAt reports whether a dynamic block header that the inflater
// would accept, with an end-of-block code and complete codes, starts at
// bit b of buf. buf must hold headerMargin bytes from b/8 on.
func dynamicHeaderAt(buf []byte, b int) bool {
	w := bitsAt(buf, b)
	if w>>1&3 != 2 {
		return false
	}
	nlit := int(w>>3&0x1f) + 257
	ndist := int(w>>8&0x1f) + 1
	nclen := int(w>>13&0xf) + 4
	if nlit > 286 || ndist > 30 {
		return false
	}
	b += 17
	c := bitsAt(buf, b)
	sum := 0
	for i := 0; i < nclen; i += 4 {
		k := min(4, nclen-i)
		sum += int(kraftClen[c>>(3*i)&(1<<(3*k)-1)])
	}
	if sum != 128 {
		return false
	}
	var clen [19]uint8
	for i, s := range clenOrder[:nclen] {
		clen[s] = uint8(c >> (3 * i) & 7)
	}
	b += 3 * nclen
	var table [1 << clenTableBits]uint32
	if !buildTable(table[:], clenTableBits, clen[:], clenTemplates[:]) {
		return false
	}
	var lengths [286 + 30]uint8
	n := nlit + ndist
	for i := 0; i < n; {
		w := bitsAt(buf, b)
		e := table[w&(1<<clenTableBits-1)]
		if e&entrySpecial != 0 {
			return false
		}
		b += int(e & entryTotal)
		w >>= e & entryTotal
		var rep int
		var val uint8
		switch sym := uint8(e >> 16); sym {
		default:
			lengths[i] = sym
			i++
			continue
		case 16:
			if i == 0 {
				return false
			}
			rep, val = 3+int(w&3), lengths[i-1]
			b += 2
		case 17:
			rep = 3 + int(w&7)
			b += 3
		case 18:
			rep = 11 + int(w&0x7f)
			b += 7
		}
		if i+rep > n {
			return false
		}
		for ; rep > 0; rep-- {
			lengths[i] = val
			i++
		}
	}
	if lengths[256] == 0 || kraft(lengths[:nlit]) != 1<<maxCodeLen {
		return false
	}
	switch k := kraft(lengths[nlit:n]); k {
	case 0, 1 << maxCodeLen:
		return true
	case 1 << (maxCodeLen - 1): // one code of length 1 is valid
		nz := 0
		for _, l := range lengths[nlit:n] {
			if l != 0 {
				nz++
			}
		}
		return nz == 1
	}
	return false
}

// kraft returns the Kraft sum of code lengths in units of 2^-15.
func kraft(lengths []uint8) int {
	sum := 0
	for _, l := range lengths {
		if l != 0 {
			sum += 1 << (maxCodeLen - l)
		}
	}
	return sum
}

// candidate is a place where a block may start.
type candidate struct {
	bit    int64 // the header, in the stream
	stored bool
}

// scanBlocks returns the first candidate at a bit offset in [from, to)
// of buf, whose bit 0 is stream bit base, or false. buf must extend
// headerMargin bytes past to/8.
func scanBlocks(buf []byte, from, to int, base int64) (candidate, bool) {
	for q := from >> 3; q<<3 < to; q++ {
		w := binary.LittleEndian.Uint64(buf[q:])
		// Bit pairs (1, 2) after a header start: BTYPE 10 (dynamic) or 00 (stored).
		m := (^w >> 1) & (w >> 2) & 0xff
		for j := 0; j < 8; j++ {
			b := q<<3 + j
			if b < from || b >= to {
				continue
			}
			// A stored header whose LEN is at q+1. The bytes of a full
			// stored block, 00 ff ff 00 00, also look like one a byte
			// early: then the later one is the block.
			if j == 5 && w>>6&3 == 0 && uint16(w>>8) == ^uint16(w>>24) &&
				!(w>>14&3 == 0 && uint16(w>>16) == ^uint16(w>>32)) {
				return candidate{bit: base + int64(b), stored: true}, true
			}
			if m>>j&1 != 0 && dynamicHeaderAt(buf, b) {
				return candidate{bit: base + int64(b)}, true
			}
		}
	}
	return candidate{}, false
}

// A chunkJob asks a worker to decode one chunk.
type chunkJob struct {
	node     *inputChunk
	exact    bool  // start at startBit (a member's first block) without searching
	startBit int64 // for exact; otherwise the chunk's first bit
	endBit   int64 // stop at the first block header at or after this
	res      chan *chunkResult
	result   *chunkResult // once received
	received bool
}

// A chunkResult is the output of a job from the block at start to end.
type chunkResult struct {
	start  int64 // bit offset of the first block header, or of LEN for a stored block
	stored bool
	final  bool // for stored: the first block's BFINAL

	wides   []*[]uint16 // output with markers: (*wides[i])[windowSize:wideEnd[i]]
	wideEnd []int
	minSrc  int // lowest window index a marker can name

	segs   []*[]byte // output in byte buffers: (*segs[i])[windowSize:segEnd[i]]
	segEnd []int

	// Where decoding stopped and the decoder state there.
	end        int64
	endNode    *inputChunk // the chunk holding end
	state      blockState
	endFinal   bool
	storedLeft int
	fixed      bool
	tables     *huffTables // the dynamic tables, if stopped inside such a block
}

type huffTables struct {
	lit  [litTableSize]uint32
	dist [distTableSize]uint32
}

// parBuffers keeps the output buffers of one parallel reader for reuse:
// fresh memory costs page faults, and sync.Pool forgets at every GC.
type parBuffers struct {
	bytes chan *[]byte
	wide  chan *[]uint16
}

func newParBuffers(workers int) *parBuffers {
	return &parBuffers{bytes: make(chan *[]byte, 32), wide: make(chan *[]uint16, workers+2)}
}

func (b *parBuffers) getBytes() *[]byte {
	select {
	case p := <-b.bytes:
		return p
	default:
		p := make([]byte, outSize)
		return &p
	}
}

func (b *parBuffers) putBytes(p *[]byte) {
	select {
	case b.bytes <- p:
	default:
	}
}

func (b *parBuffers) getWide() *[]uint16 {
	select {
	case p := <-b.wide:
		return p
	default:
		p := make([]uint16, 1<<20)
		return &p
	}
}

func (b *parBuffers) putWide(p *[]uint16) {
	select {
	case b.wide <- p:
	default:
	}
}

// release returns the result's buffers.
func (r *chunkResult) release(b *parBuffers) {
	for _, w := range r.wides {
		b.putWide(w)
	}
	r.wides = nil
	for _, s := range r.segs {
		b.putBytes(s)
	}
	r.segs = nil
}

type worker struct {
	in     *chunkInput
	bufs   *parBuffers
	f      *inflater
	maxOut int // output per job before it stops
}

func (w *worker) run(j *chunkJob) *chunkResult {
	if !w.in.wait(j.node) {
		return nil
	}
	if j.exact {
		res, _ := w.decode(j, candidate{bit: j.startBit}, true)
		return res
	}
	// Scan the chunk in place up to headerMargin bytes before its end,
	// then its tail joined to the start of the next chunk.
	data := j.node.data
	split := max(len(data)-headerMargin, 0)
	budget := trialBudget
	for part := range 2 {
		buf, from, to, base := data, 0, split*8, j.startBit
		if part == 1 {
			buf = append([]byte(nil), data[split:]...)
			if j.node.err == nil {
				next := w.in.successor(j.node)
				if !w.in.wait(next) {
					return nil
				}
				buf = append(buf, next.data[:min(len(next.data), headerMargin)]...)
			}
			buf = append(buf, make([]byte, headerMargin+8)...)
			to, base = (len(data)-split)*8, j.startBit+int64(split)*8
		}
		for from < to {
			c, ok := scanBlocks(buf, from, to, base)
			if !ok {
				break
			}
			res, used := w.decode(j, c, false)
			if res != nil {
				return res
			}
			if budget -= used; budget < 0 {
				return nil
			}
			from = int(c.bit-base) + 1
		}
	}
	return nil
}

// decode decodes from candidate c to the end of j's chunk. It returns nil
// if c is rejected or decoding fails, and how much output was produced.
func (w *worker) decode(j *chunkJob, c candidate, exact bool) (*chunkResult, int) {
	f := w.f
	f.src = w.in.seekCursor(j.node, c.bit>>3)
	f.in, f.ip, f.end, f.inBase, f.srcErr = f.in[:0], 0, 0, c.bit>>3, nil
	f.bits, f.nb = 0, 0
	if r := uint(c.bit & 7); r > 0 {
		f.need(r)
		f.consume(r)
	}
	f.state, f.final = stateHeader, false
	f.stopAt = 1<<63 - 1
	if err := f.blockHeader(); err != nil {
		return nil, 0
	}
	res := &chunkResult{start: c.bit, stored: c.stored, minSrc: windowSize}
	if c.stored {
		res.start = f.bitPos() - 32
		res.final = f.final
	}
	accepted, score := exact, 0
	produced := 0

	// The wide phase, while markers may be copied.
	var wide []uint16
	var wideBuf *[]uint16
	op, lastMarker, wideDone := windowSize, windowSize-1, 0
	if !exact {
		wideBuf = w.bufs.getWide()
		wide = *wideBuf
		for i := range windowSize {
			wide[i] = uint16(256 + i)
		}
	}
	fail := func() (*chunkResult, int) {
		if wideBuf != nil {
			w.bufs.putWide(wideBuf)
		}
		res.release(w.bufs)
		return nil, produced
	}
	wideCount := 0        // uint16 output, which takes twice the memory
	stop := func() bool { // a stop inside a block, at a limit
		return produced+wideCount >= w.maxOut || f.bitPos() >= j.endBit+int64(w.in.chunkSize)*8
	}
	stopped := false
	for !exact {
		if op-lastMarker > windowSize {
			break
		}
		produced = wideDone + op - windowSize
		wideCount = produced
		if produced >= acceptOut {
			accepted = true
		}
		if accepted && stop() {
			stopped = true
			break
		}
		switch f.state {
		case stateDone:
			stopped = true
		case stateHeader:
			if f.bitPos() >= j.endBit {
				stopped, accepted = true, true
				break
			}
			if err := f.blockHeader(); err != nil {
				return fail()
			}
			score += f.headerScore()
			accepted = accepted || score >= 2
		case stateStored:
			if f.storedLeft == 0 {
				f.endBlock()
				continue
			}
			if f.ip >= f.end {
				if f.srcErr != nil {
					return fail()
				}
				f.fill()
				continue
			}
			n := min(f.storedLeft, f.end-f.ip, len(wide)-wideSlack-op)
			for i, b := range f.in[f.ip : f.ip+n] {
				wide[op+i] = uint16(b)
			}
			op += n
			f.ip += n
			f.storedLeft -= n
		case stateHuffman:
			if f.end-f.ip < inMargin && f.srcErr == nil {
				f.fill()
				continue
			}
			var err error
			op, lastMarker, err = f.wideHuffman(wide, op, lastMarker, &res.minSrc)
			if err != nil || f.overrun() {
				return fail()
			}
		}
		if stopped {
			break
		}
		if op >= len(wide)-wideSlack { // on in a new buffer, after a copy of the window
			res.wides = append(res.wides, wideBuf)
			res.wideEnd = append(res.wideEnd, op)
			next := w.bufs.getWide()
			copy(*next, wide[op-windowSize:op])
			wideDone += op - windowSize
			lastMarker -= op - windowSize
			wideBuf, wide, op = next, *next, windowSize
		}
	}
	if wideBuf != nil {
		res.wides = append(res.wides, wideBuf)
		res.wideEnd = append(res.wideEnd, op)
		wideBuf = nil
		produced = wideDone + op - windowSize
		wideCount = produced
	}
	if stopped && f.state == stateDone {
		f.unread() // as inflate does after the last block
		accepted = true
	}

	// The byte phase.
	if !stopped {
		buf := w.bufs.getBytes()
		f.out = *buf
		f.op, f.histStart = windowSize, windowSize
		if !exact {
			for i, v := range wide[op-windowSize : op] {
				f.out[i] = byte(v)
			}
			f.histStart = 0
		}
		for {
			if f.op >= outLimit {
				res.segs = append(res.segs, buf)
				res.segEnd = append(res.segEnd, f.op)
				produced += f.op - windowSize
				next := w.bufs.getBytes()
				keep := min(f.op-f.histStart, windowSize)
				copy((*next)[windowSize-keep:], f.out[f.op-keep:f.op])
				buf, f.out, f.op, f.histStart = next, *next, windowSize, windowSize-keep
			}
			if f.state == stateHeader && f.bitPos() >= j.endBit {
				accepted = true
				break
			}
			if accepted && stop() {
				break
			}
			if accepted {
				f.stopAt = j.endBit
			} else {
				f.stopAt = f.bitPos() + 1 // stop at the next header, to check it
			}
			done, err := f.inflate()
			if err != nil {
				w.bufs.putBytes(buf)
				return fail()
			}
			if done {
				f.state = stateDone
				accepted = true
				break
			}
			if f.state != stateHeader || f.op >= outLimit {
				continue
			}
			if f.bitPos() >= j.endBit {
				accepted = true
				break
			}
			// A header before the end: check it while not yet accepted.
			if err := f.blockHeader(); err != nil {
				w.bufs.putBytes(buf)
				return fail()
			}
			score += f.headerScore()
			accepted = accepted || score >= 2 || produced+f.op-windowSize >= acceptOut
		}
		res.segs = append(res.segs, buf)
		res.segEnd = append(res.segEnd, f.op)
		produced += f.op - windowSize
		f.out = nil
	}
	if !accepted || f.overrun() {
		return fail()
	}

	res.end = f.bitPos()
	res.endNode = j.node
	for int64(res.endNode.index+1)*int64(w.in.chunkSize)*8 <= res.end {
		res.endNode = w.in.successor(res.endNode)
	}
	res.state, res.endFinal, res.storedLeft = f.state, f.final, f.storedLeft
	if f.state == stateHuffman {
		if f.lit == &fixedLit {
			res.fixed = true
		} else {
			res.tables = &huffTables{lit: f.dynLit, dist: f.dynDist}
		}
	}
	return res, produced
}

// headerScore rates the block header just read as evidence that decoding
// is in step with the stream: stored and dynamic headers are hard to hit
// by chance, fixed ones are not.
func (f *inflater) headerScore() int {
	if f.state == stateHuffman && f.lit == &fixedLit {
		return 1
	}
	return 2
}

// wideHuffman is huffman with output to out as uint16, where values >= 256
// are markers; it also stops once the last windowSize values hold no
// marker. lastMarker is the index of the last marker in out; minSrc is
// lowered to the lowest index a match copies from.
func (f *inflater) wideHuffman(out []uint16, op, lastMarker int, minSrc *int) (int, int, error) {
	in, ip := f.in, f.ip
	bitBuf, nb := f.bits, f.nb
	lit, dist := f.lit, f.dist
	inLimit := len(in) - 8
	limit := len(out) - wideSlack
	low := *minSrc
	var err error
	for ip <= inLimit && op < limit && op-lastMarker <= windowSize {
		bitBuf |= binary.LittleEndian.Uint64(in[ip:]) << (nb & 63)
		ip += int((63 - nb) >> 3)
		nb |= 56

		e := lit[bitBuf&(1<<litTableBits-1)]
		if e&entrySub != 0 {
			e = lit[e>>16+uint32(bitBuf>>litTableBits)&(1<<(e>>8&0x1f)-1)]
		}
		if e&entryLiteral != 0 {
			bitBuf >>= e & entryTotal
			nb -= uint(e & entryTotal)
			out[op] = uint16(e >> 16)
			op++
			continue
		}
		if e&entrySpecial != 0 {
			if e>>16 != 0 {
				f.ip, f.nb = ip, nb
				err = f.corrupt("invalid literal/length code")
				break
			}
			bitBuf >>= e & entryTotal
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
		if distance > op {
			f.ip, f.nb = ip, nb
			err = f.corrupt("distance too far back")
			break
		}
		src := op - distance
		low = min(low, src)
		dst := out[op : op+length]
		if distance >= length {
			copy(dst, out[src:src+length])
		} else {
			for i := range dst {
				dst[i] = out[src+i]
			}
		}
		if src <= lastMarker {
			for i := length - 1; i >= 0; i-- {
				if dst[i] >= 256 {
					lastMarker = op + i
					break
				}
			}
		}
		op += length
	}
	f.ip, f.bits, f.nb = ip, bitBuf, nb
	*minSrc = low
	return op, lastMarker, err
}
