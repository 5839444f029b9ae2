package layer

import "io"

// zstdRec records zstd frame starts, or re-encodes into a spill file, for a Recorder.
type zstdRec struct{}

// openZstdAt returns a reader of the uncompressed stream of independent zstd frames from
// p.Out to its end.
func openZstdAt(src io.ReaderAt, size int64, p Point) (io.ReadCloser, error) {
	panic("TODO")
}
