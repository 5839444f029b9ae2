package layer

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// DefaultMaxSize is the uncompressed size limit when [Options.MaxSize] is
// zero: 256 GiB, several times the largest real layers (CUDA and model
// images reach a few tens of GiB), yet it stops a decompression bomb long
// before it fills a disk through a [Spool].
const DefaultMaxSize int64 = 256 << 30

// Options tune [Decompress]. The zero value is ready to use.
type Options struct {
	// MaxSize bounds the uncompressed stream: a reader never returns more
	// than MaxSize bytes, and a longer stream fails with [ErrTooLarge].
	// Zero means DefaultMaxSize; a negative value means no limit.
	MaxSize int64

	// Parallel, when above 1, lets gzip decoding use up to that many
	// goroutines on a single member (see pargzip.go), besides the one
	// reading. It pays for large members only: the caller decides, e.g.
	// from the compressed size, and typically sets runtime.GOMAXPROCS(0).
	// Output and errors are the same as with sequential decoding; it holds
	// up to about 64 MiB more memory with two goroutines (more with more)
	// and reads the input ahead on a goroutine of its own. The reader must
	// then be closed, which waits for a Read of r in progress.
	Parallel int

	// Record, when not nil, builds the layer's random-access Map while the stream is
	// decoded (see access.go). Parallel is ignored when it is set.
	Record *Recorder
}

// parallelConfig returns the parallel decoding settings for o.
func (o Options) parallelConfig() parallelConfig {
	return parallelConfig{workers: o.Parallel, chunkSize: parChunkSize, maxJobOut: parMaxJobOut}
}

func (o Options) maxSize() int64 {
	switch {
	case o.MaxSize == 0:
		return DefaultMaxSize
	case o.MaxSize < 0:
		return 1<<63 - 1
	}
	return o.MaxSize
}

const (
	// inputBufferSize is the read-ahead on the compressed input, for the
	// decoders that read small pieces (bzip2 and xz read bytes, zstd block
	// headers). The gzip inflater and large Reads bypass it: bufio reads
	// straight into a caller's buffer of at least this size.
	inputBufferSize = 64 << 10

	// Decoder memory bounds. A zstd window or an xz dictionary is allocated
	// whole, at the size the stream declares, so a few bytes of hostile
	// header could ask for gigabytes. The ceilings accept what real encoders
	// produce (zstd --long=29, the limit containerd applies through the
	// same library's default; xz --lzma2=dict=1536MiB, xz's own maximum);
	// a small MaxSize lowers them, down to a floor that every ordinary
	// encoder setting fits (zstd levels up to 19 use <= 8 MiB windows,
	// xz -9 a 64 MiB dictionary).
	zstdMaxWindow = 512 << 20
	zstdMinWindow = 8 << 20
	xzMaxDict     = 1536 << 20
	xzMinDict     = 64 << 20

	tarBlockSize = 512
)

// memoryBound returns MaxSize rounded up to a power of two, clamped to [lo, hi].
func memoryBound(maxSize int64, lo, hi uint64) uint64 {
	n := uint64(maxSize)
	if n > hi {
		return hi
	}
	n = 1 << bits.Len64(n-1)
	return min(max(n, lo), hi)
}

// Decompress returns a reader of the uncompressed stream of the layer blob r.
// Closing it releases the decoder; it does not close r.
//
// declared is the compression the media type states, and known says whether
// it stated one (see [FromMediaType]). Without one, the format is detected
// from the magic bytes. With one, the magic bytes still win when they
// clearly name another format, because images in the wild are mislabelled:
//
//   - the bytes start with the magic of another compression format:
//     that format is used (a "tar+gzip" layer that is really zstd reads fine);
//   - a compressed format is declared but the bytes start with a valid tar
//     header: the blob is read as an uncompressed tar (tools have labelled
//     plain tars as rootfs.diff.tar.gzip);
//   - a compressed format is declared and the bytes are neither that format
//     nor tar, or the blob is empty: a [*DecodeError].
//
// Errors are wrapped with what failed: a [*DecodeError] for bad compressed
// data ("layer: gzip stream truncated: unexpected EOF"), "layer: reading
// gzip input: ..." for errors of r itself, [ErrTooLarge] past
// [Options.MaxSize]. Trailing bytes after the last gzip member are an error,
// except zero padding, which gzip(1) also accepts.
//
// The reader implements io.WriterTo, so io.Copy into a [Spool] or any other
// writer avoids an intermediate buffer.
func Decompress(r io.Reader, declared Compression, known bool, opts Options) (io.ReadCloser, error) {
	return decompress(r, declared, known, opts, opts.parallelConfig())
}

func decompress(r io.Reader, declared Compression, known bool, opts Options, par parallelConfig) (io.ReadCloser, error) {
	if known && !declared.valid() {
		return nil, fmt.Errorf("layer: unknown compression %v", declared)
	}
	src := &inputReader{r: r}
	br := bufio.NewReaderSize(src, inputBufferSize)
	head, err := br.Peek(tarBlockSize)
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("layer: reading input: %w", err)
	}
	c, err := choose(head, declared, known)
	if err != nil {
		return nil, err
	}

	maxSize := opts.maxSize()
	d := &reader{c: c, src: src, remaining: maxSize}
	switch c {
	case Uncompressed:
		d.dec = br
	case Gzip:
		if par.workers > 1 && opts.Record == nil { // checkpoints need the sequential decoder
			g, err := newParGzipReader(br, par)
			if err != nil {
				return nil, d.wrap(err)
			}
			d.dec = g
			d.release = func() { g.Close() }
			break
		}
		g, err := newGzipReader(br, opts.Record)
		if err != nil {
			return nil, d.wrap(err)
		}
		d.dec = g
	case Zstd:
		window := memoryBound(maxSize, zstdMinWindow, zstdMaxWindow)
		d.zstdWindow = window
		z, err := zstd.NewReader(br,
			zstd.WithDecoderConcurrency(1), // layers decode in parallel; no goroutines per layer
			zstd.WithDecoderLowmem(false),
			zstd.WithDecoderMaxWindow(window),
			zstd.WithDecoderMaxMemory(window),
		)
		if err != nil {
			return nil, d.wrap(err)
		}
		d.dec = z
		d.release = z.Close
	case Bzip2:
		d.dec = bzip2.NewReader(br)
	case Xz:
		x, err := newXzReader(br, src, head, memoryBound(maxSize, xzMinDict, xzMaxDict))
		if err != nil {
			return nil, d.wrap(err)
		}
		d.dec = x
	}
	if opts.Record != nil {
		// zstd frame by frame, or a spill; gzip records by itself (zstd_access.go).
		d.dec, d.release = opts.Record.wrap(c, d.dec, d.release, br, d.zstdWindow)
	}
	return d, nil
}

// choose decides which decoder reads a blob starting with head; see Decompress.
func choose(head []byte, declared Compression, known bool) (Compression, error) {
	sniffed := Detect(head)
	if !known || sniffed == declared || sniffed != Uncompressed {
		return sniffed, nil
	}
	// A compressed format was declared and the bytes carry no magic at all.
	if looksLikeTar(head) {
		return Uncompressed, nil
	}
	if magicPrefix(declared, head) || declared == Bzip2 && len(head) < 10 && bytes.HasPrefix(head, bzip2Magic) {
		return 0, &DecodeError{Compression: declared, Err: io.ErrUnexpectedEOF} // empty, or cut inside the magic
	}
	return 0, &DecodeError{Compression: declared,
		Err: fmt.Errorf("no %s header, and not a tar either (starts % x)", declared, head[:min(len(head), 8)])}
}

// looksLikeTar reports whether head starts with a tar header block whose
// checksum is right, or with the zero block that ends an empty archive.
func looksLikeTar(head []byte) bool {
	if len(head) < tarBlockSize {
		return false
	}
	block := head[:tarBlockSize]
	var unsigned, signed int64
	zero := true
	for i, b := range block {
		if b != 0 {
			zero = false
		}
		if i >= 148 && i < 156 { // the checksum field counts as spaces
			b = ' '
		}
		unsigned += int64(b)
		signed += int64(int8(b))
	}
	if zero {
		return true
	}
	var sum int64
	digits := 0
	for _, b := range block[148:156] {
		switch {
		case b >= '0' && b <= '7':
			sum = sum*8 + int64(b-'0')
			digits++
		case b == ' ' || b == 0:
			if digits > 0 {
				return sum == unsigned || sum == signed
			}
		default:
			return false
		}
	}
	return digits > 0 && (sum == unsigned || sum == signed)
}

// inputReader remembers the first error of the layer blob's reader, so that
// it can be told apart from a decoder's complaint about the data. For xz it
// also watches the end of the input (see xzTail).
type inputReader struct {
	r    io.Reader
	mu   sync.Mutex // err is set by a reading goroutine when decoding in parallel
	err  error
	tail *xzTail
}

func (s *inputReader) failure() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

func (s *inputReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		s.mu.Lock()
		if s.err == nil {
			s.err = err
		}
		s.mu.Unlock()
	}
	if s.tail != nil {
		s.tail.write(p[:n])
	}
	return n, err
}

// reader is what Decompress returns: a decoder with the size limit and
// error wrapping around it.
type reader struct {
	c         Compression
	src       *inputReader
	dec       io.Reader
	release   func()
	remaining int64 // bytes still allowed by MaxSize
	err       error // sticky
	outErr    error // error of the writer given to WriteTo

	zstdWindow uint64 // the window limit, for messages
}

var errClosed = errors.New("layer: read from a closed decompressor")

func (d *reader) Read(p []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	if int64(len(p)) > d.remaining {
		// One byte more than allowed tells a stream that ends exactly at
		// the limit from one that goes on.
		p = p[:d.remaining+1]
	}
	n, err := d.dec.Read(p)
	if int64(n) > d.remaining {
		n = int(d.remaining)
		err = ErrTooLarge
	}
	d.remaining -= int64(n)
	if err != nil {
		d.err = d.wrap(err)
	}
	return n, d.err
}

// WriteTo writes the rest of the stream to w, letting the decoder hand its
// own buffers to w where it can.
func (d *reader) WriteTo(w io.Writer) (int64, error) {
	if d.err != nil {
		if d.err == io.EOF {
			return 0, nil
		}
		return 0, d.err
	}
	lw := &limitedWriter{w: w, d: d}
	var err error
	if wt, ok := d.dec.(io.WriterTo); ok {
		_, err = wt.WriteTo(lw)
	} else {
		buf := make([]byte, 128<<10)
		_, err = io.CopyBuffer(lw, d.dec, buf)
	}
	if err == nil {
		err = io.EOF
	}
	d.err = d.wrap(err)
	if d.err == io.EOF {
		return lw.n, nil
	}
	return lw.n, d.err
}

// limitedWriter passes at most d.remaining bytes to w.
type limitedWriter struct {
	w io.Writer
	d *reader
	n int64
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	var tooLarge bool
	if int64(len(p)) > l.d.remaining {
		p = p[:l.d.remaining]
		tooLarge = true
	}
	n, err := l.w.Write(p)
	l.n += int64(n)
	l.d.remaining -= int64(n)
	if err != nil {
		l.d.outErr = err
		return n, err
	}
	if tooLarge {
		return n, ErrTooLarge
	}
	return n, nil
}

// wrap turns a decoder's error into one that says what failed.
func (d *reader) wrap(err error) error {
	switch {
	case err == nil, err == io.EOF, err == errClosed, errors.Is(err, ErrTooLarge):
		return err
	case d.outErr != nil && errors.Is(err, d.outErr):
		return err // the caller's writer failed; its error speaks for itself
	case d.src.failure() != nil && errors.Is(err, d.src.failure()):
		return fmt.Errorf("layer: reading %s input: %w", d.c, err)
	case errors.Is(err, zstd.ErrWindowSizeExceeded), errors.Is(err, zstd.ErrDecoderSizeExceeded):
		return fmt.Errorf("layer: zstd stream needs a window above the limit of %d MiB: %w", d.zstdWindow>>20, err)
	case errors.As(err, new(*xzDictError)):
		return err
	}
	var de *DecodeError
	if errors.As(err, &de) {
		return err
	}
	return &DecodeError{Compression: d.c, Err: err}
}

// Close releases the decoder. It does not close the blob's reader.
func (d *reader) Close() error {
	if d.release != nil {
		d.release()
		d.release = nil
	}
	d.dec = nil
	d.err = errClosed
	return nil
}
