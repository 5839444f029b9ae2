package squashfs

import (
	"bytes"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/ulikunitz/xz"

	"github.com/ocirender/ocirender/internal/xzheader"
)

// decompressor decodes one block (metadata, data or fragment): a self-contained stream.
// It is safe for concurrent use.
type decompressor interface {
	// decompress appends the decoded form of src to dst[:0] and returns it; it fails when
	// the output would exceed limit bytes.
	decompress(dst, src []byte, limit int) ([]byte, error)
}

func newDecompressor(id uint16) (decompressor, error) {
	switch id {
	case compGzip:
		return &zlibDecompressor{}, nil
	case compXZ:
		return xzDecompressor{}, nil
	case compLZ4:
		return lz4Decompressor{}, nil
	case compZstd:
		d, err := sharedZstd()
		if err != nil {
			return nil, fmt.Errorf("squashfs: zstd: %w", err)
		}
		return zstdDecompressor{d}, nil
	}
	if name, ok := compNames[id]; ok {
		return nil, fmt.Errorf("%w: compressor %s (this reader knows gzip, xz, lz4 and zstd)", ErrUnsupported, name)
	}
	return nil, corrupt("unknown compressor id %d", id)
}

// errTooLarge is wrapped when a block decodes to more than it may.
func errTooLarge(limit int) error {
	return corrupt("a block decodes to more than %d bytes", limit)
}

// readLimited reads r to its end into dst[:0], failing past limit bytes.
func readLimited(r io.Reader, dst []byte, limit int) ([]byte, error) {
	if cap(dst) < limit+1 {
		dst = make([]byte, 0, limit+1)
	}
	dst = dst[:0]
	for {
		if len(dst) > limit {
			return nil, errTooLarge(limit)
		}
		n, err := r.Read(dst[len(dst) : limit+1])
		dst = dst[:len(dst)+n]
		if err == io.EOF {
			if len(dst) > limit {
				return nil, errTooLarge(limit)
			}
			return dst, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// zlibDecompressor reads the zlib streams squashfs calls gzip.
type zlibDecompressor struct{ pool sync.Pool }

type zlibReader interface {
	io.ReadCloser
	zlib.Resetter
}

func (z *zlibDecompressor) decompress(dst, src []byte, limit int) ([]byte, error) {
	br := bytes.NewReader(src)
	var zr zlibReader
	if v := z.pool.Get(); v != nil {
		zr = v.(zlibReader)
		if err := zr.Reset(br, nil); err != nil {
			return nil, corrupt("gzip: %v", err)
		}
	} else {
		r, err := zlib.NewReader(br)
		if err != nil {
			return nil, corrupt("gzip: %v", err)
		}
		zr = r.(zlibReader)
	}
	out, err := readLimited(zr, dst, limit)
	if err != nil {
		return nil, corrupt("gzip: %v", err)
	}
	z.pool.Put(zr)
	return out, nil
}

// The zstd decoder is shared by every FS: DecodeAll is safe for concurrent use, and one
// decoder per image would cost its buffers each time.
var sharedZstd = sync.OnceValues(func() (*zstd.Decoder, error) {
	return zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(1<<20),
		zstd.WithDecoderMaxWindow(8<<20))
})

type zstdDecompressor struct{ d *zstd.Decoder }

func (z zstdDecompressor) decompress(dst, src []byte, limit int) ([]byte, error) {
	out, err := z.d.DecodeAll(src, dst[:0])
	if err != nil {
		return nil, corrupt("zstd: %v", err)
	}
	if len(out) > limit {
		return nil, errTooLarge(limit)
	}
	return out, nil
}

// xzDecompressor reads xz streams of one LZMA2 filter; squashfs's BCJ filters are refused.
type xzDecompressor struct{}

func (xzDecompressor) decompress(dst, src []byte, limit int) ([]byte, error) {
	if err := checkXzBlock(src, limit); err != nil {
		return nil, err
	}
	r, err := xz.ReaderConfig{DictCap: 4096, SingleStream: true}.NewReader(bytes.NewReader(src))
	if err != nil {
		return nil, corrupt("xz: %v", err)
	}
	out, err := readLimited(r, dst, limit)
	if err != nil {
		return nil, corrupt("xz: %v", err)
	}
	return out, nil
}

// checkXzBlock looks at the filters of the first block header of an xz stream: anything but
// a single LZMA2 filter is unsupported, and an LZMA2 dictionary far above what a block of
// limit bytes needs is refused before the decoder allocates it.
func checkXzBlock(src []byte, limit int) error {
	filters, _ := xzheader.FirstBlockFilters(src)
	for _, f := range filters {
		if f.ID != xzheader.LZMA2 {
			return fmt.Errorf("%w: xz filter %#x (BCJ filters, mksquashfs -Xbcj, are not read)", ErrUnsupported, f.ID)
		}
		if f.Dict > max(uint64(limit)*2, 1<<20) {
			return corrupt("xz block needs a dictionary of %d bytes for at most %d bytes of output", f.Dict, limit)
		}
	}
	return nil
}

// lz4Decompressor reads lz4 blocks: the block format, without a frame; the options block
// (version 1, the only one there is) is checked by Open.
type lz4Decompressor struct{}

func (lz4Decompressor) decompress(dst, src []byte, limit int) ([]byte, error) {
	if len(src) == 0 {
		return nil, corrupt("lz4: an empty block")
	}
	if cap(dst) < limit {
		dst = make([]byte, limit)
	}
	// The decoder writes only inside dst[:limit] and fails when the block needs more.
	n, err := lz4.UncompressBlock(src, dst[:limit])
	if err != nil {
		return nil, corrupt("lz4: %v (or a block that decodes to more than %d bytes)", err, limit)
	}
	return dst[:n], nil
}
