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

	"github.com/klauspost/compress/zstd"
)

// The spill: a layer's uncompressed stream re-encoded, while the scan decodes it, as
// independent zstd frames in a file of the caller's (Recorder.Spill), with a Point per
// frame.
//
// The decoding goroutine only copies: output into 1 MiB chunks, which a goroutine of the
// spill's own turns into frames and writes. That goroutine compresses a chunk (zstd
// SpeedFastest) when it has caught up, that is when no other chunk is waiting, and
// otherwise stores it as a raw frame, which costs a copy. So the scan never waits for the
// encoder: when decoding is faster than encoding, as zstd decoding is (about 1.3 GB/s
// against 0.35 GB/s on the 2-core test machine), part of the spill is stored raw, and the
// spill is larger; when decoding is slower (xz, bzip2, or a scan held up by its input or
// its consumer), everything is compressed. The scan waits only when all chunk buffers are
// queued, i.e. when the file cannot take the bytes as fast as they come.
//
// While a zstd stream still looks like independent frames (see zstd_access.go), the spill
// receives verbatim copies of them instead, and a rewind when that turns out wrong: the
// goroutine then reads back the part of the current frame copied so far, cuts the file
// before it, decodes that part again and goes on re-encoding from the start of the frame.

const (
	// spillFrameSize is the uncompressed size of a spill frame: a random read decodes at
	// most this much. 1 MiB frames decode in about 1 ms; 256 KiB frames compress 4% worse
	// and encode slower, 4 MiB frames take 3 to 8 ms to reach their end (BenchmarkSpillRead).
	spillFrameSize = 1 << 20

	// spillBuffers bounds the chunks a spill holds, queued or being filled: enough that the
	// decoder goes on while one chunk is compressed (about 4 chunks' worth of decoding).
	spillBuffers = 6

	// spillLevel is the compression of spill frames: the fastest; the next level encodes at
	// two thirds of the speed for 3% less.
	spillLevel = zstd.SpeedFastest
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
	b    []byte // data or verbatim bytes; capacity spillFrameSize
	out  int64  // spillData, spillRewind: offset in the uncompressed stream of the first byte

	// spillRewind: cut the file at to, then decode replay bytes of the frame copied there.
	to, replay int64
}

// spillWriter turns a stream into spill frames. Its methods are called from the decoding
// goroutine; run does the work on its own.
type spillWriter struct {
	f      *os.File
	window uint64 // decoder window limit, for replays

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
}

func newSpillWriter(f *os.File, window uint64) *spillWriter {
	s := &spillWriter{
		f:      f,
		window: window,
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
		n := s.fill(p)
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
		p = p[s.fill(p):]
	}
}

// rewind cuts the file at byte to, where a verbatim copy of a frame starts whose output
// starts at offset out of the stream, and re-encodes the first replay bytes of that frame
// from the copy. Data that follows starts at out+replay.
func (s *spillWriter) rewind(to, replay, out int64) {
	s.flush()
	s.queue <- &spillChunk{kind: spillRewind, to: to, replay: replay, out: out}
	s.next = out + replay
}

// fill copies what fits of p into the current chunk, queueing it when full.
func (s *spillWriter) fill(p []byte) int {
	c := s.cur
	n := copy(c.b[len(c.b):cap(c.b)], p)
	c.b = c.b[:len(c.b)+n]
	if len(c.b) == cap(c.b) {
		s.flush()
	}
	return n
}

func (s *spillWriter) flush() {
	if s.cur != nil {
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
			c = &spillChunk{b: make([]byte, 0, spillFrameSize)}
		} else {
			c = <-s.free
		}
	}
	c.kind, c.b = kind, c.b[:0]
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
	for c := range s.queue {
		if s.err == nil && !s.stop.Load() {
			s.err = s.do(c)
		}
		if cap(c.b) > 0 {
			s.free <- c // never blocks: free holds every buffer
		}
	}
}

func (s *spillWriter) do(c *spillChunk) error {
	switch c.kind {
	case spillVerbatim:
		return s.write(c.b)
	case spillRewind:
		return s.replay(c.to, c.replay, c.out)
	}
	// Compress only when caught up: otherwise the scan would wait for the encoder.
	return s.writeFrame(c.out, c.b, len(s.queue) == 0)
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

// replay reads back the frame copied from byte to, cuts the file there and re-encodes the
// first n bytes it decodes to, which start at offset out of the stream.
func (s *spillWriter) replay(to, n, out int64) error {
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
		if err := s.writeFrame(out, buf[:k], true); err != nil {
			return err
		}
		out += k
		n -= k
	}
	return nil
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
