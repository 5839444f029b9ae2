// Package layer turns a layer blob into its uncompressed byte stream.
//
// It owns three things:
//
//   - what a layer's media type says about its compression ([FromMediaType])
//     and what its first bytes say ([Detect]);
//   - decompression of gzip (including multi-member streams from pigz),
//     zstd (including several frames and skippable frames), bzip2 and xz,
//     with every failure reported as a readable error and a bound on the
//     uncompressed size ([Decompress]). gzip goes through our own DEFLATE
//     decoder (inflate.go), the hot path of every export, which can also
//     spread one large member over several goroutines ([Options.Parallel],
//     pargzip.go); zstd through
//     klauspost/compress, xz through ulikunitz/xz, bzip2 through the
//     standard library;
//   - the [Spool], an anonymous temporary file that keeps a layer's
//     uncompressed stream while it is scanned, so that exports can read it
//     again at any offset without decompressing twice.
//
// It deliberately knows nothing about what the uncompressed stream contains:
// tar entries, paths, whiteouts and merge rules belong to the scan and to
// package overlay. Blob digests and the image layout belong to package image;
// Decompress takes whatever reader image hands it (typically one that verifies
// the digest while reading) and reports that reader's errors as input errors,
// distinct from corrupt compressed data ([*DecodeError]).
//
// # Random access
//
// A Spool gives random access by keeping the whole uncompressed stream on
// disk. Seekable readers over the compressed blob itself (gzip checkpoints,
// zstd frame indexes) are a later addition; they will be another io.ReaderAt
// over the same uncompressed offsets, so consumers should depend on
// io.ReaderAt, not on *Spool.
package layer

import (
	"errors"
	"fmt"
	"io"
)

// ErrTooLarge is returned (possibly wrapped) by a reader from [Decompress]
// when the uncompressed stream is longer than [Options.MaxSize].
var ErrTooLarge = errors.New("layer: uncompressed stream exceeds the size limit")

// ErrMediaType is wrapped by [FromMediaType] for a media type that does not
// describe a filesystem layer.
var ErrMediaType = errors.New("layer: not a layer media type")

// A DecodeError reports compressed data that cannot be decoded: the stream
// is truncated, corrupt, or followed by unexpected bytes. Errors of the
// underlying reader (I/O errors, digest mismatches) are not DecodeErrors.
//
// errors.Is(err, io.ErrUnexpectedEOF) reports whether the stream ended early.
type DecodeError struct {
	Compression Compression
	Err         error // the decoder's error
}

func (e *DecodeError) Error() string {
	if errors.Is(e.Err, io.ErrUnexpectedEOF) {
		return fmt.Sprintf("layer: %s stream truncated: %v", e.Compression, e.Err)
	}
	return fmt.Sprintf("layer: %s stream corrupt: %v", e.Compression, e.Err)
}

func (e *DecodeError) Unwrap() error { return e.Err }
