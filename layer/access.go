package layer

import (
	"fmt"
	"io"
	"os"
)

// Random access into a layer's uncompressed stream.
//
// A layer is decompressed once, by the scan. While it is, a Recorder notes how to reach any
// offset of the uncompressed stream later without decoding from the start; the result is a
// Map, which the index cache stores next to the merged index. A Reader then serves ReadAt
// over the uncompressed stream from the compressed blob (or from a re-encoded copy) and the
// Map.
//
//   - Uncompressed layers are read in place (AccessDirect).
//   - gzip: a Point every Recorder.Interval bytes of output, at the first DEFLATE block
//     boundary past it, holding the exact bit position and the 32 KiB window before it
//     (AccessGzip). Our own inflater reports exact bit positions, stored blocks included.
//   - zstd made of frames no larger than 8 MiB (one or several): a Point at a frame start
//     every Interval bytes (AccessZstdFrames).
//   - larger zstd frames, bzip2 and xz have no safe place to resume: the uncompressed stream
//     is re-encoded during the scan as independent 1 MiB frames into a spill file, and a Point
//     per frame locates them there (AccessSpill). See zstd_access.go and spill.go.

// Access says where a Reader finds a layer's bytes and how it decodes them.
type Access uint8

const (
	AccessDirect     Access = iota + 1 // the blob is the uncompressed stream
	AccessGzip                         // resume DEFLATE at gzip checkpoints in the blob
	AccessZstdFrames                   // independent zstd frames in the blob
	AccessSpill                        // independent zstd frames in a spill file
)

func (a Access) String() string {
	switch a {
	case AccessDirect:
		return "direct"
	case AccessGzip:
		return "gzip"
	case AccessZstdFrames:
		return "zstd-frames"
	case AccessSpill:
		return "spill"
	}
	return "invalid"
}

// DefaultInterval is the spacing of resume points (gzip checkpoints, zstd frame starts) in
// uncompressed bytes when Recorder.Interval is zero.
const DefaultInterval = 1 << 20

// Point is a place where decoding can start.
type Point struct {
	// Out is the offset in the uncompressed stream of the first byte decoded from here.
	Out int64
	// In is where decoding resumes: for AccessGzip a bit offset in the blob (at a DEFLATE
	// block header, or at a gzip member header when Window is nil and In is a multiple of 8);
	// for the zstd kinds the byte offset of a frame in the blob or spill file.
	In int64
	// Window (AccessGzip only) is the history a resumed inflater needs: the 32 KiB (or less)
	// preceding Out with every byte the following matches never copy zeroed ("sparse", see
	// gzip_access.go), compressed with zstd. Nil at the start of a member.
	Window []byte
}

// Map is how to reach any offset of one layer's uncompressed stream.
type Map struct {
	Access Access
	Size   int64   // length of the uncompressed stream
	Points []Point // sorted by Out; Points[0].Out == 0 (empty for AccessDirect)
}

// Recorder builds a layer's Map while Decompress decodes it (Options.Record). A Recorder
// serves one Decompress call.
type Recorder struct {
	// Interval is the minimum distance in uncompressed bytes between resume points (gzip
	// checkpoints, and zstd frame starts kept as points); zero means DefaultInterval.
	Interval int64

	// Spill creates the file the uncompressed stream is re-encoded into when the encoding
	// offers no resume points of its own (single-frame zstd, bzip2, xz). It is called at most
	// once, from the decoding goroutine. When nil, such layers get no Map (Map returns
	// ErrNoMap) and must be read some other way.
	Spill func() (*os.File, error)

	m   Map
	err error   // the first recording failure
	gz  gzipRec // gzip checkpoints (gzip_access.go)
	zs  zstdRec // zstd frames and spill (zstd_access.go)
}

// interval returns the checkpoint spacing.
func (r *Recorder) interval() int64 {
	if r.Interval <= 0 {
		return DefaultInterval
	}
	return r.Interval
}

// Map returns the finished map, once Decompress's reader has returned io.EOF. It fails
// when recording failed (the spill file could not be written, say) or, with ErrNoMap, when
// the stream has no resume points and Spill was nil.
func (r *Recorder) Map() (*Map, error) {
	if r.err != nil {
		return nil, r.err
	}
	if r.m.Access == 0 {
		return nil, ErrNoMap
	}
	m := r.m
	return &m, nil
}

// open returns a reader of the uncompressed stream from Points[i].Out to its end. src is the
// blob (or, for AccessSpill, the spill file) and size its length.
func (m *Map) open(src io.ReaderAt, size int64, i int) (io.ReadCloser, error) {
	switch m.Access {
	case AccessGzip:
		return openGzipAt(src, size, m.Points[i])
	case AccessZstdFrames, AccessSpill:
		return openZstdAt(src, size, m.Points[i])
	}
	return nil, fmt.Errorf("layer: cannot resume a %s map", m.Access)
}

// ErrNoMap is returned by Recorder.Map when the stream could not be mapped.
var ErrNoMap = errNoMap{}

type errNoMap struct{}

func (errNoMap) Error() string { return "layer: no random-access map for this layer" }
