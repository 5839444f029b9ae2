package layer

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/zstd"
)

// The spill: a layer's uncompressed stream re-encoded, while the scan decodes it, as
// independent zstd frames in a file of the caller's (Recorder.Spill), with a Point per
// frame.
//
// The decoding goroutine only copies its output into 1 MiB chunks; a goroutine of the
// spill's own turns them into frames and writes them. Compressing (zstd SpeedFastest)
// costs 3 to 4 ns a byte on the 2-core test machine, where decoding zstd costs about 0.8
// and writing a raw frame about 0.3, so that goroutine compresses a chunk only
//
//   - when it has time to spare: no other chunk waits, and it has lately been working
//     less than half of its time (wall time: waiting for a processor counts as working,
//     so a busy machine gets raw frames); or
//   - when a raw frame would make the spill larger than spillMaxRatio times the blob
//     decoded so far (zstd only), even if the decoder then waits.
//
// Otherwise it stores the chunk as a raw frame, which the chunk's layout makes a plain
// write. Slow decoders (xz, bzip2, a scan held up by its input or its consumer) thus get
// compact spills (0.45 bytes per byte of a Debian rootfs), and fast zstd decoding larger
// but bounded ones. Scanning a Debian rootfs of 204 MB as one zstd frame of 81 MB
// (ocirender cat, cold cache, best of five) took 0.35 s and left a 182 MB spill; raw
// frames only, 0.30 s for 186 MB; a bound of twice the blob instead of three times, 0.49 s
// for 157 MB; compressing every frame, 0.75 s for 93 MB. The same layer scans in 0.50 s
// as gzip, in 0.28 s as 4 MiB zstd frames (no spill). The scan waits only when all chunk
// buffers are queued.
//
// While a zstd stream still looks like independent frames (see zstd_access.go), the spill
// receives verbatim copies of them instead, and a rewind when that turns out wrong: the
// goroutine then reads back the part of the current frame copied so far, cuts the file
// before it, decodes that part again and goes on re-encoding from the start of the frame.

const (
	// spillFrameSize is the uncompressed size of a spill frame: a random read decodes at
	// most this much. A random 4 KiB read from 1 MiB frames takes 0.45 ms (0.07 ms raw);
	// from 256 KiB frames 0.13 ms, but they compress 4% worse; from 4 MiB frames 1.8 ms
	// (BenchmarkSpillRead).
	spillFrameSize = 1 << 20

	// spillBuffers bounds the chunks a spill holds, queued or being filled: enough that the
	// decoder goes on while one chunk is compressed (about 4 chunks' worth of decoding).
	spillBuffers = 6 // 6 MiB

	// spillLevel is the compression of spill frames: the fastest; the next level encodes at
	// two thirds of the speed for 3% less.
	spillLevel = zstd.SpeedFastest

	// spillBudget is the share of its time the spill goroutine may spend working and still
	// compress; spillMemory how much of its past a chunk later still counts (0.9: about
	// the last ten chunks).
	spillBudget = 0.5
	spillMemory = 0.9

	// spillMaxRatio bounds the spill of a zstd layer to about three times the blob decoded
	// so far: past that, frames are compressed even when the decoder must wait for them.
	// Without it, a 3 MB layer of 21 MB, spilled raw, took 7 times its blob in the index
	// cache. Most layers compress less than 3 times, and spill mostly raw at full speed;
	// 2 would cost a third more scanning time for a sixth less space on those (see above).
	// It is a bound the spill tries to keep: independent 1 MiB frames may compress worse
	// than the blob.
	spillMaxRatio = 3
)

// spillEncoder compresses the frames of every spill; EncodeAll may be called concurrently.
var spillEncoder = sync.OnceValues(func() (*zstd.Encoder, error) {
	return zstd.NewWriter(nil,
		zstd.WithEncoderLevel(spillLevel),
		zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)),
		zstd.WithWindowSize(spillFrameSize),
		zstd.WithLowerEncoderMem(true),
	)
})

type spillKind uint8

const (
	spillData     spillKind = iota // uncompressed bytes, to become a frame
	spillVerbatim                  // bytes of zstd frames, to be written as they are
	spillRewind                    // cut the file back and replay a frame's beginning
)

// spillChunk is a unit of work for the spill goroutine.
type spillChunk struct {
	kind spillKind
	buf  []byte // spillChunkSize bytes: verbatim bytes, or data laid out as a raw frame
	n    int    // bytes of verbatim or data in buf
	out  int64  // spillData, spillRewind: offset in the uncompressed stream of the first byte
	in   int64  // spillData, spillRewind: blob bytes decoded when queued, or -1

	// spillRewind: cut the file at to, then decode replay bytes of the frame copied there.
	to, replay int64
}

// A data chunk holds its bytes where a raw frame of them has them (rawFrameAt), so that
// storing it raw is writing the buffer, and compressing it costs a copy.
const (
	rawHeaderLen   = 4 + 1 + 4 // magic number, descriptor, content size
	rawBlockLen    = 3 + zstdMaxBlockSize
	spillChunkSize = rawHeaderLen + spillFrameSize/zstdMaxBlockSize*rawBlockLen
)

// spillWriter turns a stream into spill frames. Its methods are called from the decoding
// goroutine; run does the work on its own.
type spillWriter struct {
	f      *os.File
	window uint64 // decoder window limit, for replays
	in     *int64 // blob bytes decoded so far, when known

	queue chan *spillChunk
	free  chan *spillChunk
	made  int         // chunk buffers allocated
	cur   *spillChunk // being filled
	next  int64       // offset in the uncompressed stream of the next data byte
	ended bool        // close or abort was called

	stop atomic.Bool   // abort: do no more work
	done chan struct{} // closed when run returns

	// Owned by run until done is closed.
	off    int64   // bytes written to f
	points []Point // one per frame written
	err    error   // the first failure
	frame  []byte  // a frame being written
	plain  []byte  // the data of a chunk being compressed
	busy   float64 // time spent working, decaying by spillMemory per chunk
	span   float64 // time elapsed, likewise
}

// newSpillWriter starts a spill into f. in, when not nil, counts the blob bytes decoded.
func newSpillWriter(f *os.File, window uint64, in *int64) *spillWriter {
	s := &spillWriter{
		f:      f,
		window: window,
		in:     in,
		queue:  make(chan *spillChunk, spillBuffers),
		free:   make(chan *spillChunk, spillBuffers),
		done:   make(chan struct{}),
	}
	go s.run()
	return s
}

// data adds uncompressed bytes at offset s.next of the stream.
func (s *spillWriter) data(p []byte) {
	for len(p) > 0 {
		if s.cur != nil && s.cur.kind != spillData {
			s.flush()
		}
		if s.cur == nil {
			s.cur = s.chunk(spillData)
			s.cur.out = s.next
		}
		c := s.cur
		k := c.n % zstdMaxBlockSize
		at := rawHeaderLen + c.n/zstdMaxBlockSize*rawBlockLen + 3 + k
		n := copy(c.buf[at:at+zstdMaxBlockSize-k], p)
		c.n += n
		if c.n == spillFrameSize {
			s.flush()
		}
		s.next += int64(n)
		p = p[n:]
	}
}

// verbatim adds bytes of zstd frames to be written as they are.
func (s *spillWriter) verbatim(p []byte) {
	for len(p) > 0 {
		if s.cur != nil && s.cur.kind != spillVerbatim {
			s.flush()
		}
		if s.cur == nil {
			s.cur = s.chunk(spillVerbatim)
		}
		c := s.cur
		n := copy(c.buf[c.n:], p)
		c.n += n
		if c.n == len(c.buf) {
			s.flush()
		}
		p = p[n:]
	}
}

// rewind cuts the file at byte to, where a verbatim copy of a frame starts whose output
// starts at offset out of the stream, and re-encodes the first replay bytes of that frame
// from the copy. Data that follows starts at out+replay.
func (s *spillWriter) rewind(to, replay, out int64) {
	s.flush()
	c := &spillChunk{kind: spillRewind, to: to, replay: replay, out: out, in: -1}
	if s.in != nil {
		c.in = *s.in
	}
	s.queue <- c
	s.next = out + replay
}

func (s *spillWriter) flush() {
	if s.cur != nil {
		s.cur.in = -1
		if s.in != nil {
			s.cur.in = *s.in
		}
		s.queue <- s.cur
		s.cur = nil
	}
}

// chunk returns an empty chunk buffer, waiting for one when all are in use.
func (s *spillWriter) chunk(kind spillKind) *spillChunk {
	var c *spillChunk
	select {
	case c = <-s.free:
	default:
		if s.made < spillBuffers {
			s.made++
			c = &spillChunk{buf: make([]byte, spillChunkSize)}
		} else {
			c = <-s.free
		}
	}
	c.kind, c.n = kind, 0
	return c
}

// close writes what is left and waits for the goroutine. It returns the points of the
// frames written and the size of the file.
func (s *spillWriter) close() ([]Point, int64, error) {
	if !s.ended {
		s.ended = true
		s.flush()
		close(s.queue)
	}
	<-s.done
	return s.points, s.off, s.err
}

// abort stops the goroutine, dropping what it has not written.
func (s *spillWriter) abort() {
	if !s.ended {
		s.ended = true
		s.stop.Store(true)
		s.cur = nil
		close(s.queue)
	}
	<-s.done
}

func (s *spillWriter) run() {
	defer close(s.done)
	last := time.Now()
	for c := range s.queue {
		start := time.Now()
		if s.err == nil && !s.stop.Load() {
			s.err = s.do(c)
		}
		end := time.Now()
		s.busy = s.busy*spillMemory + float64(end.Sub(start))
		s.span = s.span*spillMemory + float64(end.Sub(last))
		last = end
		if c.buf != nil {
			s.free <- c // never blocks: free holds every buffer
		}
	}
}

func (s *spillWriter) do(c *spillChunk) error {
	switch c.kind {
	case spillVerbatim:
		return s.write(c.buf[:c.n])
	case spillRewind:
		return s.replay(c.to, c.replay, c.out, c.in)
	}
	raw := rawFrameAt(c.buf, c.n)
	if !s.compressNow() && !s.tooLarge(len(raw), c.in) {
		s.points = append(s.points, Point{Out: c.out, In: s.off})
		return s.write(raw)
	}
	s.plain = s.plain[:0]
	for k := 0; k < c.n; k += zstdMaxBlockSize {
		at := rawHeaderLen + k/zstdMaxBlockSize*rawBlockLen + 3
		s.plain = append(s.plain, c.buf[at:at+min(zstdMaxBlockSize, c.n-k)]...)
	}
	return s.writeFrame(c.out, s.plain, true)
}

// compressNow reports whether to compress the next frame: when no chunk is waiting (else
// the decoder would soon wait for this goroutine) and the goroutine has been working less
// than spillBudget of its time lately. Busy time is wall time, so a goroutine that waits
// for a processor counts as busy, and a busy machine gets raw frames.
func (s *spillWriter) compressNow() bool {
	return len(s.queue) == 0 && s.busy <= spillBudget*s.span
}

// tooLarge reports whether writing n more bytes makes the spill larger than spillMaxRatio
// times in, the blob bytes decoded (-1: unknown).
func (s *spillWriter) tooLarge(n int, in int64) bool {
	return in >= 0 && s.off+int64(n) > spillMaxRatio*in
}

// writeFrame writes p, the stream from offset out, as one frame.
func (s *spillWriter) writeFrame(out int64, p []byte, compress bool) error {
	if compress {
		enc, err := spillEncoder()
		if err != nil {
			return err
		}
		s.frame = enc.EncodeAll(p, s.frame[:0])
	} else {
		s.frame = appendRawFrame(s.frame[:0], p)
	}
	s.points = append(s.points, Point{Out: out, In: s.off})
	return s.write(s.frame)
}

func (s *spillWriter) write(p []byte) error {
	n, err := s.f.WriteAt(p, s.off)
	s.off += int64(n)
	if err != nil {
		return fmt.Errorf("layer: writing the spill file: %w", err)
	}
	return nil
}

// replay reads back the frame copied from byte to, cuts the file there and writes the first
// n bytes it decodes to, which start at offset out of the stream, as raw frames unless the
// spill would grow too large for in, the blob bytes decoded.
func (s *spillWriter) replay(to, n, out, in int64) error {
	part := make([]byte, s.off-to)
	if _, err := s.f.ReadAt(part, to); err != nil {
		return fmt.Errorf("layer: reading back the spill file: %w", err)
	}
	if err := s.f.Truncate(to); err != nil {
		return fmt.Errorf("layer: cutting the spill file: %w", err)
	}
	s.off = to
	if n == 0 {
		return nil
	}
	dec, err := zstd.NewReader(bytes.NewReader(part),
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderLowmem(false),
		zstd.WithDecoderMaxWindow(s.window),
		zstd.WithDecoderMaxMemory(s.window),
	)
	if err != nil {
		return err
	}
	defer dec.Close()
	buf := make([]byte, min(n, spillFrameSize))
	for n > 0 {
		k := min(n, int64(len(buf)))
		if _, err := io.ReadFull(dec, buf[:k]); err != nil {
			return fmt.Errorf("layer: decoding a zstd frame again from its copy: %w", err)
		}
		// Raw if it can: the decoder is about to wait for this goroutine, if it does not already.
		if err := s.writeFrame(out, buf[:k], s.tooLarge(rawFrameLen(int(k)), in)); err != nil {
			return err
		}
		out += k
		n -= k
	}
	return nil
}

// rawFrameAt completes the raw frame of the n data bytes laid out in buf (see
// spillChunkSize) by writing its headers, and returns it.
func rawFrameAt(buf []byte, n int) []byte {
	binary.LittleEndian.PutUint32(buf, zstdFrameMagic)
	buf[4] = 2<<6 | 1<<5 // as in appendRawFrame
	binary.LittleEndian.PutUint32(buf[5:], uint32(n))
	at := rawHeaderLen
	for k := 0; ; k += zstdMaxBlockSize {
		size := min(n-k, zstdMaxBlockSize)
		h := uint32(size) << 3
		if k+size == n {
			h |= 1
		}
		buf[at], buf[at+1], buf[at+2] = byte(h), byte(h>>8), byte(h>>16)
		if h&1 != 0 {
			return buf[:at+3+size]
		}
		at += rawBlockLen
	}
}

// rawFrameLen returns the length of the raw frame of n bytes.
func rawFrameLen(n int) int {
	return rawHeaderLen + 3*max(1, (n+zstdMaxBlockSize-1)/zstdMaxBlockSize) + n
}

// appendRawFrame appends a zstd frame holding p as raw blocks: a single-segment frame
// with its content size and no checksum.
func appendRawFrame(dst, p []byte) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, zstdFrameMagic)
	dst = append(dst, 2<<6|1<<5) // a 4-byte Frame_Content_Size, single segment
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(p)))
	for {
		n := min(len(p), zstdMaxBlockSize)
		h := uint32(n) << 3 // raw block
		if n == len(p) {
			h |= 1 // the last
		}
		dst = append(dst, byte(h), byte(h>>8), byte(h>>16))
		dst = append(dst, p[:n]...)
		p = p[n:]
		if len(p) == 0 {
			return dst
		}
	}
}
