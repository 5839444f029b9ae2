package layer

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"slices"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// gzip checkpoints: where decoding of a gzip blob can start again.
//
// While Decompress decodes a gzip stream with a Recorder, the gzipReader notes Points:
//
//   - at the header of the first member (Out 0, In 0), and of any later member that starts
//     at least Interval bytes of output after the previous point: In is 8 × the byte offset
//     of the member header and Window is nil. Resuming there parses the header and checks
//     the member's CRC and length as usual.
//   - inside a member, at the first DEFLATE block header whose output offset is at least
//     Interval past the previous point: In is the exact bit offset of the block header (our
//     inflater's bitPos is exact, stored blocks included) and Window the output before it
//     that the decoding from there reads, zstd-compressed: the up to 32 KiB before the point
//     that belong to the same member, with the bytes no match copies zeroed and the unread
//     beginning dropped (a sparse window, see sparseWindow). The member's CRC and length
//     cannot be checked from there (its start was not decoded); its trailer is read and
//     skipped.
//
// A Window is never nil (nor empty) inside a member, even when it holds no byte (a zstd
// frame of nothing), and always nil at a member header, so the two kinds are told apart by
// Window alone.
//
// The inflater stops at the right block header by itself (inflater.stopOut), outside its
// decoding loop, so recording costs a parse of the next 32 KiB of output and one zstd
// compression of a sparse window per point. Windows are compressed at zstd's default level:
// see BenchmarkGzipWindow for sizes and speeds.

// gzipRec records gzip checkpoints for a Recorder.
type gzipRec struct {
	next    int64  // no point before this output offset
	scratch []byte // a window being compressed, before it gets a slice of its own

	// Sparse windows (see sparseWindow).
	walker *inflater         // parses ahead of a point, on the main inflater's input
	used   *[windowSize]bool // window bytes the output after the point copies
	window *[windowSize]byte // the sparse window
}

// windowLevel is the zstd level of checkpoint windows.
const windowLevel = zstd.SpeedDefault

// windowEncoder compresses the windows of every recording layer; EncodeAll may be called
// concurrently.
var windowEncoder = sync.OnceValues(func() (*zstd.Encoder, error) {
	return zstd.NewWriter(nil,
		zstd.WithEncoderLevel(windowLevel),
		zstd.WithWindowSize(windowSize),
		// The checksum (4 bytes) stays: from inside a member nothing else would notice a damaged window.
		zstd.WithLowerEncoderMem(true),
		zstd.WithZeroFrames(true), // an empty window is a frame, not nothing, which a cache could read back as nil
	)
})

// windowDecoder expands windows of every resumed reader; DecodeAll may be called
// concurrently. It refuses output beyond a DEFLATE window.
var windowDecoder = sync.OnceValues(func() (*zstd.Decoder, error) {
	return zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(0),
		zstd.WithDecoderMaxMemory(windowSize),
		zstd.WithDecoderMaxWindow(windowSize),
	)
})

// memberPoint records a point at the header of a member, which starts at byte start of
// the blob, unless the previous point is too close.
func (g *gzipReader) memberPoint(start int64) {
	r := g.rec
	out := g.base + int64(g.f.op)
	if len(r.m.Points) > 0 && out < r.gz.next {
		return
	}
	r.m.Points = append(r.m.Points, Point{Out: out, In: start * 8})
	r.gz.next = after(out, r.interval())
}

// setStop makes the inflater return at the first block header where a point is due, or,
// in a resumed reader, at the first one resumeStep bytes on.
func (g *gzipReader) setStop() {
	if g.rec == nil {
		g.f.stopOut = g.f.op + g.step
		return
	}
	// op never reaches outSize: a larger distance means no stop in this buffer.
	g.f.stopOut = int(min(g.rec.gz.next-g.base, outSize))
}

// checkpoint records a point if the inflater stands at a block header where one is due.
func (g *gzipReader) checkpoint() {
	f, r := g.f, g.rec
	out := g.base + int64(f.op)
	if f.state != stateHeader || out < r.gz.next || r.err != nil {
		return
	}
	enc, err := windowEncoder()
	if err != nil {
		r.err = fmt.Errorf("layer: gzip checkpoints: %w", err)
		return
	}
	window := g.sparseWindow(f.out[max(f.op-windowSize, f.histStart):f.op])
	r.gz.scratch = enc.EncodeAll(window, r.gz.scratch[:0])
	r.m.Points = append(r.m.Points, Point{Out: out, In: f.bitPos(), Window: bytes.Clone(r.gz.scratch)})
	r.gz.next = after(out, r.interval())
}

// after returns out+interval, or the largest offset if that overflows.
func after(out, interval int64) int64 {
	if out > math.MaxInt64-interval {
		return math.MaxInt64
	}
	return out + interval
}

// recordEnd completes the map once the stream has ended cleanly.
func (g *gzipReader) recordEnd() {
	g.rec.m.Access = AccessGzip
	g.rec.m.Size = g.base + int64(g.f.op)
	g.rec.gz = gzipRec{} // the buffers
}

// resumeStep is about how much a resumed reader decodes ahead of its reads: reads near a
// checkpoint should not pay for decoding a whole outChunk. The inflater stops at block
// headers only, so a step runs on to the end of a block (up to outChunk).
const resumeStep = 64 << 10

// inflaters keeps the buffers of closed resumed readers (about 1.3 MiB each).
var inflaters sync.Pool

func getInflater(src io.Reader, inBase int64) *inflater {
	f, _ := inflaters.Get().(*inflater)
	if f == nil {
		f = newInflater(src)
	} else {
		*f = inflater{src: src, in: f.in[:0], out: f.out, stopAt: math.MaxInt64, stopOut: math.MaxInt}
	}
	f.inBase = inBase
	return f
}

// openGzipAt returns a reader of a gzip blob's uncompressed stream from p.Out to its end.
// src holds the blob, size bytes long. Later members are decoded and checked as Decompress
// does; errors are reported the same way, with offsets in the blob.
func openGzipAt(src io.ReaderAt, size int64, p Point) (io.ReadCloser, error) {
	if p.In < 0 || p.In/8 > size {
		return nil, fmt.Errorf("layer: gzip checkpoint at uncompressed offset %d: bit offset %d is outside the %d-byte blob", p.Out, p.In, size)
	}
	if p.Window == nil && p.In%8 != 0 {
		return nil, fmt.Errorf("layer: gzip checkpoint at uncompressed offset %d: no window, and bit offset %d is not at a member header", p.Out, p.In)
	}
	start := p.In / 8
	in := &inputReader{r: io.NewSectionReader(src, start, size-start)}
	f := getInflater(in, start)
	g := &gzipReader{f: f, step: resumeStep}
	d := &reader{c: Gzip, src: in, dec: g, remaining: math.MaxInt64, release: func() { inflaters.Put(f) }}
	fail := func(err error) (io.ReadCloser, error) {
		d.Close()
		return nil, err
	}
	if p.Window == nil {
		if err := g.readHeader(); err != nil {
			return fail(d.wrap(err))
		}
		return d, nil
	}

	dec, err := windowDecoder()
	if err != nil {
		return fail(err)
	}
	window, err := dec.DecodeAll(p.Window, f.out[:0]) // f.out has room: no allocation
	if err == nil && len(window) > windowSize {
		err = fmt.Errorf("%d bytes, more than %d", len(window), windowSize)
	}
	if err != nil {
		return fail(fmt.Errorf("layer: gzip checkpoint at uncompressed offset %d: window: %w", p.Out, err))
	}
	n := copy(f.out, window)
	if r := uint(p.In % 8); r > 0 {
		if err := f.need(r); err != nil {
			return fail(d.wrap(err))
		}
		f.consume(r)
	}
	f.op, f.histStart = n, 0
	f.state, f.final = stateHeader, false
	g.rp, g.crcPos = n, n
	g.noCheck = true
	return d, nil
}

// Sparse windows.
//
// A window is stored for the matches of the 32 KiB of output after its point that reach
// back before the point; nothing later can reach it. Those matches read little of it (on a
// Debian layer, 2 KiB of the 32 on average, the farthest 12 KiB back). sparseWindow parses
// them (without decoding) and keeps only the bytes they read, the others zeroed and the
// unread beginning dropped, which compresses ten times better.
// Decoding from the point reads the same bytes either way, so its output is the same; the
// window after the point is output decoded from here, exact as well.
//
// The parse reads ahead in the main inflater's input buffer: walkInput bytes are made
// available there first (the inflater reads them later anyway), and it reads no further, so
// that the map depends on the stream alone. Where they do not hold the 32 KiB of output
// (long runs of empty blocks), or the data is corrupt (the main decoding reports that), the
// whole window is kept.

// walkInput is how much compressed input sparseWindow may parse: 32 KiB of output takes at
// most 64 KiB in Huffman codes of up to 15 bits, plus block headers.
const walkInput = 96 << 10

// errWalkEnd is the walker's input error: the end of what sparseWindow may parse.
var errWalkEnd = fmt.Errorf("layer: end of the input to parse ahead")

// sparseWindow returns window, the output before the point where the inflater stands, with
// the bytes that decoding from the point never reads zeroed and the unread beginning
// dropped; or window itself if that cannot be told.
func (g *gzipReader) sparseWindow(window []byte) []byte {
	f, r := g.f, &g.rec.gz
	if r.walker == nil {
		r.walker, r.used, r.window = &inflater{}, new([windowSize]bool), new([windowSize]byte)
	}
	used := r.used[windowSize-len(window):]
	clear(used)
	pos := f.bitPos()
	for f.end-int(pos/8-f.inBase) < walkInput && f.srcErr == nil {
		f.fill()
	}
	w := r.walker
	w.ip, w.inBase = int(pos/8-f.inBase), f.inBase
	if f.end-w.ip >= walkInput || f.srcErr == nil {
		// Exactly walkInput bytes, however the source's reads fell: the map does not depend
		// on them. w must not read more, nor fill f.in.
		n := min(f.end, w.ip+walkInput)
		w.in, w.end, w.srcErr = f.in[:n], n, errWalkEnd
	} else {
		w.in, w.end, w.srcErr = f.in, f.end, f.srcErr // the end of the stream, and the zero padding
	}
	w.bits, w.nb = 0, 0
	if n := uint(pos % 8); n > 0 {
		if w.need(n) != nil {
			return window
		}
		w.consume(n)
	}
	w.state, w.final = stateHeader, false
	if !w.walk(used) {
		return window
	}
	first := slices.Index(used, true)
	if first < 0 {
		return nil
	}
	sparse := r.window[:len(window)-first]
	for i, b := range window[first:] {
		if used[first+i] {
			sparse[i] = b
		} else {
			sparse[i] = 0
		}
	}
	return sparse
}

// walk parses the DEFLATE stream from a block header for windowSize bytes of output, or to
// its end, and marks in used the bytes before the start that matches copy; used[len(used)-1]
// is the byte just before it. It reports whether it got that far.
func (f *inflater) walk(used []bool) bool {
	pos := 0 // of the output, from the start
	for pos < windowSize {
		switch f.state {
		case stateDone:
			return !f.overrun()
		case stateHeader:
			if f.blockHeader() != nil {
				return false
			}
		case stateStored:
			if f.storedLeft == 0 {
				f.endBlock()
				continue
			}
			n := min(f.storedLeft, f.end-f.ip)
			if n == 0 {
				return false
			}
			f.ip += n
			f.storedLeft -= n
			pos += n
		case stateHuffman:
			before := f.bitPos()
			var ok bool
			if pos, ok = f.walkHuffman(pos, used); !ok || f.overrun() || f.bitPos() == before {
				return false
			}
		}
	}
	return true
}

// walkHuffman is huffman without output: it parses the symbols of a Huffman block from
// output position pos until the block ends, pos reaches windowSize or the input runs out,
// and marks in used the bytes before position 0 that matches copy. It reports false for
// corrupt data.
func (f *inflater) walkHuffman(pos int, used []bool) (int, bool) {
	in, ip := f.in, f.ip
	bitBuf, nb := f.bits, f.nb
	lit, dist := f.lit, f.dist
	inLimit := len(in) - 8
	for ip <= inLimit && pos < windowSize {
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
			pos++
			continue
		}
		if e&entrySpecial != 0 {
			if e>>16 != 0 {
				return pos, false
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
			return pos, false
		}
		total = d & entryTotal
		distance := int(d>>16) + int(bitBuf&(1<<(total&63)-1)>>(d>>8&0x1f))
		bitBuf >>= total & 63
		nb -= uint(total)
		if src := pos - distance; src < 0 {
			if -src > len(used) {
				return pos, false // distance too far back
			}
			for i := len(used) + src; i < len(used)+min(src+length, 0); i++ {
				used[i] = true
			}
		}
		pos += length
	}
	f.ip, f.bits, f.nb = ip, bitBuf, nb
	return pos, true
}
