package squashfs

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// The compressors Write can use, by the name the command line takes.
const (
	Zstd = "zstd"
	Gzip = "gzip"
	XZ   = "xz"
)

// Compressor ids of the superblock.
const (
	compGzip = 1
	compXZ   = 4
	compZstd = 6
)

// compressor compresses one block (data, fragment or metadata) into a self-contained stream the
// kernel's decompressor for the superblock's compressor id reads. One per goroutine.
type compressor interface {
	// compress appends the compressed form of src to dst[:0] and returns it.
	compress(dst, src []byte) ([]byte, error)
}

// codec describes a compression choice: its superblock id, the compressor options block (nil
// when none is written) and how to make compressors.
type codec struct {
	name    string
	id      uint16
	level   int
	options []byte
	make    func() (compressor, error)
}

// newCodec checks name and level and returns the codec. window is the largest block the
// compressor will see (the data block size, at least a metadata block).
func newCodec(name string, level, window int) (*codec, error) {
	switch name {
	case "", Zstd:
		if level == 0 {
			level = 3
		}
		if level < 1 || level > 22 {
			return nil, fmt.Errorf("squashfs: zstd level %d out of range 1-22", level)
		}
		lvl := zstd.EncoderLevelFromZstd(level)
		return &codec{name: Zstd, id: compZstd, level: level, make: func() (compressor, error) {
			// One segment per block: the frame's window is the block itself, which is what
			// the kernel's decompressor (sized for one block) accepts.
			enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(lvl), zstd.WithEncoderConcurrency(1),
				zstd.WithSingleSegment(true), zstd.WithEncoderCRC(false), zstd.WithWindowSize(window))
			if err != nil {
				return nil, err
			}
			return zstdCompressor{enc}, nil
		}}, nil
	case Gzip:
		if level == 0 {
			level = 9
		}
		if level < 1 || level > 9 {
			return nil, fmt.Errorf("squashfs: gzip level %d out of range 1-9", level)
		}
		return &codec{name: Gzip, id: compGzip, level: level, make: func() (compressor, error) {
			zw, err := zlib.NewWriterLevel(nil, level)
			if err != nil {
				return nil, err
			}
			return &zlibCompressor{zw: zw}, nil
		}}, nil
	case XZ:
		if level != 0 {
			return nil, fmt.Errorf("squashfs: xz takes no --level")
		}
		// The kernel preallocates a dictionary of one block when no options are given; the
		// options block says so explicitly (dictionary size, no filters).
		opts := binary.LittleEndian.AppendUint32(nil, uint32(window))
		opts = binary.LittleEndian.AppendUint32(opts, 0)
		cfg := xz.WriterConfig{DictCap: window, CheckSum: xz.CRC32}
		if err := cfg.Verify(); err != nil {
			return nil, fmt.Errorf("squashfs: xz: %w", err)
		}
		return &codec{name: XZ, id: compXZ, options: opts, make: func() (compressor, error) {
			return &xzCompressor{cfg: cfg}, nil
		}}, nil
	}
	return nil, fmt.Errorf("squashfs: unknown compressor %q (want zstd, gzip or xz)", name)
}

type zstdCompressor struct{ enc *zstd.Encoder }

func (z zstdCompressor) compress(dst, src []byte) ([]byte, error) {
	return z.enc.EncodeAll(src, dst[:0]), nil
}

// appendWriter appends what is written to a slice.
type appendWriter struct{ b []byte }

func (a *appendWriter) Write(p []byte) (int, error) {
	a.b = append(a.b, p...)
	return len(p), nil
}

type zlibCompressor struct {
	zw  *zlib.Writer
	out appendWriter
}

func (z *zlibCompressor) compress(dst, src []byte) ([]byte, error) {
	z.out.b = dst[:0]
	z.zw.Reset(&z.out)
	if _, err := z.zw.Write(src); err != nil {
		return nil, err
	}
	if err := z.zw.Close(); err != nil {
		return nil, err
	}
	b := z.out.b
	z.out.b = nil
	return b, nil
}

type xzCompressor struct{ cfg xz.WriterConfig }

func (x *xzCompressor) compress(dst, src []byte) ([]byte, error) {
	buf := bytes.NewBuffer(dst[:0])
	w, err := x.cfg.NewWriter(buf)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(src); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
