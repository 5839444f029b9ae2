package squashfs

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/ulikunitz/xz"
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
	case LZ4:
		if level < 0 || level > 9 {
			return nil, fmt.Errorf("squashfs: lz4 level %d out of range 0-9 (0 fast, 1-9 high compression)", level)
		}
		// The kernel refuses an lz4 image without its options block: version 1 (the "legacy"
		// format, which is the plain lz4 block format) and flags, bit 0 meaning high
		// compression. The flag only informs readers; decoding is the same.
		var flags uint32
		if level > 0 {
			flags = lz4HC
		}
		opts := binary.LittleEndian.AppendUint32(nil, lz4Legacy)
		opts = binary.LittleEndian.AppendUint32(opts, flags)
		return &codec{name: LZ4, id: compLZ4, level: level, options: opts, make: func() (compressor, error) {
			if level == 0 {
				return &lz4Compressor{fast: new(lz4.Compressor)}, nil
			}
			return &lz4Compressor{hc: &lz4.CompressorHC{Level: lz4Levels[level-1]}}, nil
		}}, nil
	}
	return nil, fmt.Errorf("squashfs: unknown compressor %q (want zstd, gzip, xz or lz4)", name)
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

// lz4Levels are the high-compression levels --level 1-9 choose: the match search depth
// doubles with each (512 at level 1, 131072 at level 9, past which lz4's 64 KiB window
// leaves nothing more to find). mksquashfs -Xhc uses liblz4's highest level, 12; level 9
// here comes closest.
var lz4Levels = [9]lz4.CompressionLevel{lz4.Level1, lz4.Level2, lz4.Level3, lz4.Level4, lz4.Level5,
	lz4.Level6, lz4.Level7, lz4.Level8, lz4.Level9}

// lz4Compressor writes lz4 blocks (the block format, not the frame format: squashfs's block
// header already holds the sizes), with the fast compressor or the high-compression one.
type lz4Compressor struct {
	fast *lz4.Compressor
	hc   *lz4.CompressorHC
}

func (c *lz4Compressor) compress(dst, src []byte) ([]byte, error) {
	// Room for the worst case, so that compression always succeeds; a block that comes out
	// no smaller than it went in is stored raw by the caller, as with the other codecs.
	bound := lz4.CompressBlockBound(len(src))
	if cap(dst) < bound {
		dst = make([]byte, bound)
	}
	dst = dst[:bound]
	var n int
	var err error
	if c.hc != nil {
		n, err = c.hc.CompressBlock(src, dst)
	} else {
		n, err = c.fast.CompressBlock(src, dst)
	}
	if err != nil {
		return nil, err
	}
	return dst[:n], nil
}
