package squashfs

import (
	"context"
	"fmt"
	"io"
	"math/bits"
	"runtime"
	"time"

	"github.com/ocirender/ocirender/export"
	"github.com/ocirender/ocirender/index"
)

// Options tune Write. The zero value writes zstd level 3, 128 KiB blocks, one compressor per
// CPU, no export table.
type Options struct {
	Compression string // Zstd (default), Gzip, XZ or LZ4
	Level       int    // 0 = the compressor's default (zstd 3, gzip 9, lz4 fast); lz4 1-9 = high compression; xz takes none
	BlockSize   int    // bytes, a power of two from 4 KiB to 1 MiB; 0 = 128 KiB
	Threads     int    // compressor goroutines; 0 = GOMAXPROCS
	Exportable  bool   // write the NFS export table

	// MkfsTime is the superblock's creation time; zero = the newest mtime in the tree.
	MkfsTime time.Time

	// Progress, when set, is called now and then with the bytes of file content written.
	Progress func(written int64)
	// Notice, when set, receives one line about anything left out (an xattr namespace
	// squashfs cannot hold).
	Notice func(msg string)
}

// DefaultBlockSize is the data block size when Options.BlockSize is 0.
const DefaultBlockSize = 128 << 10

// Write writes the tree of ix, with file content read from layers, as a squashfs image to w
// from offset 0 on. It writes sequentially and comes back to offset 0 for the superblock at the
// end. The same index, content and options always give the same bytes.
func Write(ctx context.Context, w io.WriterAt, ix *index.Index, layers export.Layers, opts Options) error {
	bs := opts.BlockSize
	if bs == 0 {
		bs = DefaultBlockSize
	}
	if bs < 4096 || bs > 1<<20 || bs&(bs-1) != 0 {
		return fmt.Errorf("squashfs: block size %d is not a power of two from 4096 to 1048576", bs)
	}
	codec, err := newCodec(opts.Compression, opts.Level, max(bs, metaSize))
	if err != nil {
		return err
	}
	threads := opts.Threads
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	mc, err := codec.make()
	if err != nil {
		return fmt.Errorf("squashfs: %s: %w", codec.name, err)
	}
	b := newBuilder(ix, bs, mc, opts)
	if err := b.plan(); err != nil {
		return err
	}

	out := newOutWriter(w)
	out.Write(make([]byte, superSize))
	if codec.options != nil {
		out.Write([]byte{byte(len(codec.options)), 0x80}) // one uncompressed metadata block
		out.Write(codec.options)
	}
	dp := &dataPass{bs: bs, layers: layers, files: b.files, order: b.dataOrder(), out: out,
		codec: codec, threads: threads, progress: opts.Progress}
	if err := dp.run(ctx); err != nil {
		return err
	}
	b.resolveDups()
	if err := ctx.Err(); err != nil {
		return err
	}

	root, err := b.writeTree()
	if err != nil {
		return err
	}
	sb := superblock{
		inodes:      b.count,
		mkfsTime:    b.mkfsTime,
		blockSize:   uint32(bs),
		fragments:   uint32(len(dp.frags)),
		compression: codec.id,
		blockLog:    uint16(bits.TrailingZeros(uint(bs))),
		ids:         uint16(len(b.ids)),
		major:       versionMajor,
		minor:       versionMinor,
		rootInode:   root,
	}
	if dp.dups {
		sb.flags |= flagDuplicates
	}
	if codec.options != nil {
		sb.flags |= flagCompOpts
	}
	if err := b.writeTables(out, &sb, dp.frags); err != nil {
		return err
	}
	if opts.Progress != nil {
		opts.Progress(dp.written)
	}
	sb.bytesUsed = uint64(out.pos())
	if pad := out.pos() % devBlockSize; pad != 0 {
		out.Write(make([]byte, devBlockSize-pad))
	}
	if err := out.flush(); err != nil {
		return err
	}
	if _, err := w.WriteAt(sb.marshal(), 0); err != nil {
		return fmt.Errorf("squashfs: %w", err)
	}
	return nil
}

// outWriter buffers sequential writes to an io.WriterAt and knows its position.
type outWriter struct {
	w   io.WriterAt
	buf []byte
	off int64 // image offset of buf[0]
	err error
}

func newOutWriter(w io.WriterAt) *outWriter {
	return &outWriter{w: w, buf: make([]byte, 0, 1<<20)}
}

func (o *outWriter) pos() int64 { return o.off + int64(len(o.buf)) }

// Write appends p; errors stick and are returned by every later call.
func (o *outWriter) Write(p []byte) (int, error) {
	if o.err != nil {
		return 0, o.err
	}
	if len(o.buf)+len(p) > cap(o.buf) {
		if err := o.flush(); err != nil {
			return 0, err
		}
		if len(p) >= cap(o.buf) {
			if _, err := o.w.WriteAt(p, o.off); err != nil {
				o.err = fmt.Errorf("squashfs: %w", err)
				return 0, o.err
			}
			o.off += int64(len(p))
			return len(p), nil
		}
	}
	o.buf = append(o.buf, p...)
	return len(p), nil
}

func (o *outWriter) flush() error {
	if o.err != nil {
		return o.err
	}
	if len(o.buf) > 0 {
		if _, err := o.w.WriteAt(o.buf, o.off); err != nil {
			o.err = fmt.Errorf("squashfs: %w", err)
			return o.err
		}
		o.off += int64(len(o.buf))
		o.buf = o.buf[:0]
	}
	return nil
}
