package layer

import "io"

// gzipRec records gzip checkpoints for a Recorder.
type gzipRec struct{}

// openGzipAt returns a reader of a gzip blob's uncompressed stream from p.Out to its end.
func openGzipAt(src io.ReaderAt, size int64, p Point) (io.ReadCloser, error) {
	panic("TODO")
}
