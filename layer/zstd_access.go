package layer

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// Random access into zstd, bzip2 and xz layers (and plain tars declared as compressed).
//
// A zstd stream of several frames can be entered at any frame: frames are independent. The
// scan decodes such a stream frame by frame (zstd_frames.go) and records a Point at the
// start of a data frame (skippable frames are skipped and recorded nowhere) whenever the
// previous point is at least Recorder.Interval bytes of output behind: zstd:chunked writes
// a frame per tar header and per ~64 KiB piece of file, and a point per frame would make
// maps of hundreds of thousands of points for little gain. Then Map.Access is
// AccessZstdFrames, provided that no frame is larger than zstdFrameLimit, in output or in
// input: a random read decodes less than Interval + zstdFrameLimit bytes.
//
// Anything else gets a spill (spill.go): the uncompressed stream re-encoded into the file
// Recorder.Spill gives, as independent frames of spillFrameSize bytes (AccessSpill). That
// is the lot of single-frame zstd larger than the limit, bzip2 and xz.
//
// For zstd, the choice is made at the end, which is the only place it can be made
// soundly: a stream of small frames may end with a large one. Until then the spill gets a
// verbatim copy of every data frame, so that when a frame proves too large the spill
// already holds the stream up to that frame as independent frames: it is cut at the
// frame's start, and re-encoding starts there, with the part of the frame already decoded
// decoded once more from its copy (a frame whose header declares a size above the limit
// goes to the spill at once). The points before that frame stay, with their In moved into
// the spill. When the stream ends with every frame small enough, the copy is discarded
// (the file is truncated to nothing) and the map points into the blob. The first frame's
// size is not a good enough predictor to skip the copy: zstd:chunked makes one frame of
// the headers of consecutive empty files and one of a run of zeros, and concatenated files
// mix sizes. The copy is a write of the blob's size and no computation, yet it costs
// about a quarter of the decoding's processor time (BenchmarkSpill, frames-copy); with
// the blob at hand as an io.ReaderAt, the prefix could be copied from it only when a
// frame proves too large.
//
// A zstd stream of one frame within the limit is mapped too, with a single point: a random
// read decodes at most zstdFrameLimit bytes, as with several frames, and small layers
// need no spill file.
//
// A zstd stream without data frames (skippable frames only) gets an AccessZstdFrames map
// of size 0 without points. A spill always has at least one frame, empty for an empty
// stream, so that its Points[0].Out is 0.
//
// Recording never changes what Decompress returns: a failure to write the spill is kept in
// Recorder.err, and Map reports it after the stream was read to its end.

// zstdFrameLimit is the largest zstd frame, in output and in input bytes, that is a
// resume point: a random read from 8 MiB frames takes 4 ms on average, and up to 9
// (BenchmarkSpillRead), a few times what a gzip checkpoint costs; below it, frame sizes
// seen in the wild (4 MiB seekable frames, zstd:chunked's ~64 KiB) fit.
const zstdFrameLimit = 8 << 20

type zstdMode uint8

const (
	zstdModeFrames zstdMode = iota + 1 // every frame so far is small enough
	zstdModeSpill                      // re-encoding into the spill
	zstdModeNone                       // no map: frames too large and no Spill
	zstdModeDirect                     // the blob is the stream
)

// zstdRec records zstd frames, or re-encodes into a spill file, for a Recorder.
type zstdRec struct {
	r      *Recorder
	mode   zstdMode
	window uint64 // the zstd decoder's window limit
	limit  int64  // zstdFrameLimit, or less in tests
	out    int64  // bytes of output so far
	in     *int64 // zstd: bytes of the blob decoded so far

	// zstdModeFrames
	points    []Point // In is the blob offset of the frame
	copies    []int64 // with a spill: where the copy of points[i]'s frame starts in it
	inFrame   bool    // a data frame started and its unit has not ended
	frameOut  int64   // output offset of the current frame
	frameIn   int64   // its bytes passed so far
	frameCopy int64   // where its copy starts in the spill
	copied    int64   // bytes copied to the spill

	spill    *spillWriter
	asked    bool    // Spill was called
	spillErr error   // Spill failed
	prefix   []Point // zstdModeSpill: the points of copied frames, In in the spill
	ended    bool    // the map is made, or will never be
}

// wrap returns what reads the layer with recording, for a decoder of compression c made
// by decompress, with release its release function (may be nil). gzip records by itself.
func (r *Recorder) wrap(c Compression, dec io.Reader, release func(), br *bufio.Reader,
	window uint64) (io.Reader, func()) {
	zs := &r.zs
	zs.r, zs.window = r, window
	if zs.limit == 0 {
		zs.limit = zstdFrameLimit
	}
	switch c {
	case Uncompressed:
		zs.mode = zstdModeDirect
		dec = &recordingReader{r: dec, zs: zs}
	case Zstd:
		zs.mode = zstdModeFrames
		z := newZstdFrameReader(dec.(*zstd.Decoder), br, zs)
		zs.in, dec = &z.split.pos, z
	case Bzip2, Xz:
		zs.mode = zstdModeSpill
		dec = &recordingReader{r: dec, zs: zs}
	default:
		return dec, release
	}
	return dec, func() {
		if release != nil {
			release()
		}
		zs.failed(errClosedEarly)
	}
}

var errClosedEarly = errors.New("closed before its end")

// output takes bytes of the uncompressed stream.
func (zs *zstdRec) output(p []byte) {
	switch zs.mode {
	case zstdModeFrames:
		if zs.out+int64(len(p))-zs.frameOut > zs.limit {
			zs.abandon()
			zs.spillData(p)
		}
	case zstdModeSpill:
		zs.spillData(p)
	}
	zs.out += int64(len(p))
}

func (zs *zstdRec) spillData(p []byte) {
	if s := zs.openSpill(); s != nil {
		s.data(p)
	} else if zs.mode == zstdModeSpill {
		zs.mode = zstdModeNone
	}
}

// openSpill calls Recorder.Spill the first time, and returns the spill or nil.
func (zs *zstdRec) openSpill() *spillWriter {
	if zs.asked {
		return zs.spill
	}
	zs.asked = true
	if zs.r.Spill == nil {
		return nil
	}
	f, err := zs.r.Spill()
	if err == nil && f == nil {
		err = errors.New("no file")
	}
	if err != nil {
		zs.spillErr = fmt.Errorf("layer: creating the spill file: %w", err)
		return nil
	}
	zs.spill = newSpillWriter(f, zs.window, zs.in)
	return zs.spill
}

// frameStart is told by the splitter that a data frame starts at byte in of the blob, and
// how large it says it is (-1: it does not say).
func (zs *zstdRec) frameStart(in, size int64) {
	if zs.mode != zstdModeFrames {
		return
	}
	zs.openSpill() // the copy starts with the first frame
	zs.inFrame, zs.frameOut, zs.frameIn, zs.frameCopy = true, zs.out, 0, zs.copied
	if n := len(zs.points); n == 0 || zs.out-zs.points[n-1].Out >= zs.r.interval() {
		zs.points = append(zs.points, Point{Out: zs.out, In: in})
		zs.copies = append(zs.copies, zs.copied)
	}
	if size > zs.limit {
		zs.abandon() // too large already: no copy to make, nothing to decode again
	}
}

// frameBytes is given the bytes of data frames as the decoder reads them.
func (zs *zstdRec) frameBytes(p []byte) {
	if zs.mode != zstdModeFrames {
		return
	}
	zs.frameIn += int64(len(p))
	if zs.frameIn > zs.limit {
		zs.abandon()
		return
	}
	if zs.spill != nil {
		zs.spill.verbatim(p)
		zs.copied += int64(len(p))
	}
}

// framesUnknown is told by the splitter that it stopped parsing.
func (zs *zstdRec) framesUnknown() {
	if zs.mode == zstdModeFrames {
		zs.abandon()
	}
}

// unitEnd is told that the decoder finished a unit (and so a data frame, if it had one).
func (zs *zstdRec) unitEnd() { zs.inFrame = false }

// abandon gives up frames: the spill takes over from the start of the current frame, or
// from here between frames.
func (zs *zstdRec) abandon() {
	from, to, replay := zs.out, zs.copied, int64(0)
	if zs.inFrame {
		from, to, replay = zs.frameOut, zs.frameCopy, zs.out-zs.frameOut
	}
	s := zs.openSpill()
	if s == nil {
		zs.mode, zs.points, zs.copies = zstdModeNone, nil, nil
		return
	}
	for i, p := range zs.points {
		if p.Out < from {
			zs.prefix = append(zs.prefix, Point{Out: p.Out, In: zs.copies[i]})
		}
	}
	zs.mode, zs.points, zs.copies = zstdModeSpill, nil, nil
	s.rewind(to, replay, from)
}

// finish makes the map at the clean end of the stream.
func (zs *zstdRec) finish() {
	if zs.ended {
		return
	}
	zs.ended = true
	r := zs.r
	switch zs.mode {
	case zstdModeDirect:
		r.m = Map{Access: AccessDirect, Size: zs.out}
	case zstdModeFrames:
		if s := zs.spill; s != nil {
			s.close() // a failure to copy does not matter now
			s.f.Truncate(0)
		}
		r.m = Map{Access: AccessZstdFrames, Size: zs.out, Points: zs.points}
	case zstdModeSpill:
		s := zs.openSpill() // not yet open when the stream is empty
		if s == nil {
			r.err = zs.spillErr // or nil: ErrNoMap
			return
		}
		points, size, err := s.close()
		if err == nil && len(zs.prefix)+len(points) == 0 {
			_, err = s.f.WriteAt(appendRawFrame(nil, nil), size)
			points = []Point{{Out: 0, In: size}}
		}
		if err != nil {
			r.err = err
			return
		}
		r.m = Map{Access: AccessSpill, Size: zs.out, Points: append(zs.prefix, points...)}
	case zstdModeNone:
		r.err = zs.spillErr // or nil: ErrNoMap
	}
}

// failed ends recording without a map: the stream did not decode to its end.
func (zs *zstdRec) failed(err error) {
	if zs.ended {
		return
	}
	zs.ended = true
	if zs.spill != nil {
		zs.spill.abort()
	}
	zs.r.err = fmt.Errorf("layer: no map: the stream was not decoded: %w", err)
}

// recordingReader shows zs the output of a decoder that records nothing by itself.
type recordingReader struct {
	r  io.Reader
	zs *zstdRec
}

func (d *recordingReader) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	d.zs.output(p[:n])
	switch {
	case err == io.EOF:
		d.zs.finish()
	case err != nil:
		d.zs.failed(err)
	}
	return n, err
}

func (d *recordingReader) WriteTo(w io.Writer) (int64, error) {
	tw := &outputTee{w: w, zs: d.zs}
	var n int64
	var err error
	if wt, ok := d.r.(io.WriterTo); ok {
		n, err = wt.WriteTo(tw)
	} else {
		n, err = io.CopyBuffer(tw, struct{ io.Reader }{d.r}, make([]byte, 128<<10))
	}
	if err != nil {
		d.zs.failed(err)
		return n, err
	}
	d.zs.finish()
	return n, nil
}

// openZstdAt returns a reader of the uncompressed stream of independent zstd frames from
// p.Out to its end: src holds the frames (the blob or the spill file), size bytes, and
// p.In is where a frame starts. Damaged data is a *DecodeError, a stream that ends early
// io.ErrUnexpectedEOF.
func openZstdAt(src io.ReaderAt, size int64, p Point) (io.ReadCloser, error) {
	if p.In < 0 || p.In >= size {
		return nil, fmt.Errorf("layer: zstd frame at byte %d of a %d-byte file", p.In, size)
	}
	z, _ := zstdAtPool.Get().(*zstdAt)
	if z == nil {
		dec, err := zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderLowmem(false),
			zstd.WithDecoderMaxWindow(zstdMaxWindow),
			zstd.WithDecoderMaxMemory(zstdMaxWindow),
		)
		if err != nil {
			return nil, err
		}
		z = &zstdAt{dec: dec, br: bufio.NewReaderSize(nil, zstdAtBuffer)}
	}
	z.src = &inputReader{r: io.NewSectionReader(src, p.In, size-p.In)}
	z.br.Reset(z.src)
	if err := z.dec.Reset(z.br); err != nil {
		return nil, err
	}
	return &zstdAtReader{z: z}, nil
}

// zstdAtBuffer is the read size of resumed zstd readers: the decoder reads block headers
// a few bytes at a time.
const zstdAtBuffer = 64 << 10

// zstdAt is a decoder of resumed streams, kept in zstdAtPool between uses.
type zstdAt struct {
	dec *zstd.Decoder
	br  *bufio.Reader
	src *inputReader // remembers the error of src
}

var zstdAtPool sync.Pool

type zstdAtReader struct{ z *zstdAt }

func (r *zstdAtReader) Read(p []byte) (int, error) {
	if r.z == nil {
		return 0, errClosed
	}
	n, err := r.z.dec.Read(p)
	switch {
	case err == nil, err == io.EOF, err == io.ErrUnexpectedEOF:
	case r.z.src.failure() != nil && errors.Is(err, r.z.src.failure()):
		err = fmt.Errorf("layer: reading zstd frames: %w", err)
	default:
		err = &DecodeError{Compression: Zstd, Err: err}
	}
	return n, err
}

func (r *zstdAtReader) Close() error {
	if z := r.z; z != nil {
		r.z = nil
		z.dec.Reset(nil)
		z.br.Reset(nil)
		z.src = nil
		zstdAtPool.Put(z)
	}
	return nil
}
