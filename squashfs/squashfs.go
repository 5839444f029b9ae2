// Package squashfs reads squashfs 4.0 images: the superblock, the inode, directory, id,
// fragment and xattr tables, and file contents, without mounting anything, without
// squashfuse and without cgo.
//
// It exists so that ocirender can check an image it (or mksquashfs) wrote without trusting
// the writer: package verify walks an FS and compares it with the merged index. Writing
// images is another job, done by package export/squashfs; the two share no code, so a
// misreading of the format in one is not silently repeated by the other.
//
// # Using it
//
//	f, _ := os.Open("rootfs.sqfs")
//	fi, _ := f.Stat()
//	sq, err := squashfs.Open(f, fi.Size())
//	...
//	err = sq.Walk(func(p string, in *squashfs.Inode) error {
//		if in.Type == squashfs.Reg {
//			r, err := sq.OpenFile(in) // an io.Reader and io.ReaderAt of the content
//			...
//		}
//		return nil
//	})
//
// An FS is safe for concurrent use; a File is too, but its Read position is shared.
//
// # What is read
//
// Every inode type in its basic and extended form; directory listings (headers of up to
// 256 entries) and directory indexes (Lookup uses them as the kernel does); regular files
// as full blocks, tail fragments, holes (blocks of size 0) and blocks stored uncompressed;
// uids and gids through the id table; xattrs in the user., trusted. and security.
// namespaces, values stored inline or out of line. Metadata, data and fragment blocks
// compressed with gzip (zlib streams), xz (LZMA2 only, no BCJ filters), lz4 (the block
// format, with or without mksquashfs -Xhc) or zstd; lzo and lzma images are refused with
// ErrUnsupported. The NFS export table is not needed and not read.
//
// # Untrusted images
//
// Every position, count and size read from the image is checked against the image and the
// table it belongs to before it is used, so a corrupt or hostile image gives an error
// wrapping ErrCorrupt, never a panic or an allocation the image's own size does not
// justify: metadata blocks decode to at most 8 KiB, data blocks to at most the block size,
// symlink targets are at most 4096 bytes, xattr values 64 KiB (4 MiB for the set of
// one inode), names 256 bytes, a directory at most 1 Mi entries, and a file's block list is read as the file is, never
// loaded whole. Walk refuses a directory inode or listing met twice, which is how a cycle
// (or a tree made to look exponentially large) shows itself, and a tree deeper than
// MaxDepth. Names are checked: "", ".", "..", and names with "/" or NUL are corrupt, and so
// are two entries of one directory with the same name.
package squashfs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"sync"
	"time"
)

// Errors callers may branch on; the errors returned wrap them with details.
var (
	// ErrNotSquashfs: the image does not start with the squashfs magic.
	ErrNotSquashfs = errors.New("squashfs: not a squashfs image")
	// ErrUnsupported: a valid squashfs this reader does not read (an old version, the
	// big-endian format, a compressor other than gzip, xz, lz4 and zstd, xz BCJ filters,
	// an lz4 stream format other than version 1).
	ErrUnsupported = errors.New("squashfs: unsupported")
	// ErrCorrupt: the image breaks the format.
	ErrCorrupt = errors.New("squashfs: corrupt image")
)

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

// On-disk constants of squashfs 4.0 (little endian throughout).
const (
	magic        = 0x73717368 // "hsqs"
	magicSwapped = 0x68737173 // "sqsh": big-endian images (squashfs 1-3)
	superSize    = 96
	metaSize     = 8192    // uncompressed size of a metadata block, at most
	metaRaw      = 1 << 15 // metadata block header bit: stored uncompressed
	dataRaw      = 1 << 24 // data/fragment block size word bit: stored uncompressed
	noFragment   = 0xffffffff
	noXattr      = 0xffffffff
	noTable      = ^uint64(0)
	maxDirCount  = 256 // entries after one directory header
	maxNameLen   = 256
	maxSymlink   = 4096    // the kernel refuses longer targets (PAGE_SIZE)
	maxXattrSize = 1 << 16 // Linux's XATTR_SIZE_MAX
	maxDirLen    = 1 << 20 // entries of one directory
	// MaxDepth bounds how deep Walk descends.
	MaxDepth = 4096
)

// Compressor ids of the superblock.
const (
	compGzip = 1
	compLZMA = 2
	compLZO  = 3
	compXZ   = 4
	compLZ4  = 5
	compZstd = 6
)

// lz4Legacy is the version of the lz4 compressor options: the lz4 block format.
const lz4Legacy = 1

var compNames = map[uint16]string{compGzip: "gzip", compLZMA: "lzma", compLZO: "lzo", compXZ: "xz",
	compLZ4: "lz4", compZstd: "zstd"}

// superblock is the first 96 bytes of an image.
type superblock struct {
	inodes        uint32
	mkfsTime      uint32
	blockSize     uint32
	fragments     uint32
	compression   uint16
	blockLog      uint16
	flags         uint16
	ids           uint16
	major, minor  uint16
	rootInode     uint64
	bytesUsed     uint64
	idTable       uint64
	xattrIDTable  uint64
	inodeTable    uint64
	dirTable      uint64
	fragmentTable uint64
	exportTable   uint64
}

const flagCompOpts = 0x0400

func parseSuper(b []byte) superblock {
	le := binary.LittleEndian
	return superblock{
		inodes:        le.Uint32(b[4:]),
		mkfsTime:      le.Uint32(b[8:]),
		blockSize:     le.Uint32(b[12:]),
		fragments:     le.Uint32(b[16:]),
		compression:   le.Uint16(b[20:]),
		blockLog:      le.Uint16(b[22:]),
		flags:         le.Uint16(b[24:]),
		ids:           le.Uint16(b[26:]),
		major:         le.Uint16(b[28:]),
		minor:         le.Uint16(b[30:]),
		rootInode:     le.Uint64(b[32:]),
		bytesUsed:     le.Uint64(b[40:]),
		idTable:       le.Uint64(b[48:]),
		xattrIDTable:  le.Uint64(b[56:]),
		inodeTable:    le.Uint64(b[64:]),
		dirTable:      le.Uint64(b[72:]),
		fragmentTable: le.Uint64(b[80:]),
		exportTable:   le.Uint64(b[88:]),
	}
}

// FS is an opened squashfs image.
type FS struct {
	r      io.ReaderAt
	sb     superblock
	bs     int
	dec    decompressor
	dirEnd uint64 // the directory table lies in [sb.dirTable, dirEnd)
	ids    []uint32

	meta  blockCache[uint64]
	frags blockCache[uint32]

	xattrOnce sync.Once
	xattrErr  error
	kvStart   uint64 // start of the xattr key/value table
	xattrIDs  uint32 // entries of the xattr id table
}

// Open reads the superblock, the id table and the root inode of the image r holds in its
// first size bytes. r must stay readable while the FS is used.
func Open(r io.ReaderAt, size int64) (*FS, error) {
	var b [superSize]byte
	if size < superSize {
		return nil, fmt.Errorf("%w: %d bytes, shorter than a superblock", ErrNotSquashfs, size)
	}
	if _, err := r.ReadAt(b[:], 0); err != nil {
		return nil, fmt.Errorf("squashfs: reading the superblock: %w", err)
	}
	switch binary.LittleEndian.Uint32(b[:]) {
	case magic:
	case magicSwapped:
		return nil, fmt.Errorf("%w: a big-endian image (squashfs 3 or older)", ErrUnsupported)
	default:
		return nil, fmt.Errorf("%w: no \"hsqs\" magic", ErrNotSquashfs)
	}
	sb := parseSuper(b[:])
	if sb.major != 4 || sb.minor != 0 {
		return nil, fmt.Errorf("%w: version %d.%d (want 4.0)", ErrUnsupported, sb.major, sb.minor)
	}
	bs := sb.blockSize
	if bs < 4096 || bs > 1<<20 || bs&(bs-1) != 0 {
		return nil, corrupt("block size %d is not a power of two from 4 KiB to 1 MiB", bs)
	}
	if int(sb.blockLog) != bits.TrailingZeros32(bs) {
		return nil, corrupt("block log %d does not match block size %d", sb.blockLog, bs)
	}
	if sb.bytesUsed > uint64(size) {
		return nil, corrupt("the superblock counts %d bytes, the image has %d: truncated", sb.bytesUsed, size)
	}
	if sb.inodeTable < superSize || sb.inodeTable >= sb.dirTable || sb.dirTable > sb.bytesUsed {
		return nil, corrupt("inode table at %d, directory table at %d, %d bytes used", sb.inodeTable, sb.dirTable, sb.bytesUsed)
	}
	if sb.ids == 0 {
		return nil, corrupt("empty id table")
	}
	fs := &FS{r: r, sb: sb, bs: int(bs)}
	fs.meta.init(256)
	fs.frags.init(16)
	var err error
	if fs.dec, err = newDecompressor(sb.compression); err != nil {
		return nil, err
	}
	if sb.flags&flagCompOpts != 0 {
		if err := fs.readCompOptions(); err != nil {
			return nil, err
		}
	} else if sb.compression == compLZ4 {
		// The kernel refuses to mount such an image, and mksquashfs never writes one.
		return nil, corrupt("an lz4 image without its compressor options")
	}
	// The directory table ends where the next table (or its first metadata block) starts.
	fs.dirEnd = sb.bytesUsed
	for _, t := range []uint64{sb.fragmentTable, sb.exportTable, sb.idTable, sb.xattrIDTable} {
		if t != noTable && t > sb.dirTable && t < fs.dirEnd {
			fs.dirEnd = t
		}
	}
	if err := fs.readIDs(); err != nil {
		return nil, err
	}
	root, err := fs.Root()
	if err != nil {
		return nil, err
	}
	if root.Type != Dir {
		return nil, corrupt("the root inode is a %s", root.Type)
	}
	return fs, nil
}

// BlockSize is the data block size.
func (fs *FS) BlockSize() int { return fs.bs }

// Compression names the compressor: gzip, xz, lz4 or zstd.
func (fs *FS) Compression() string { return compNames[fs.sb.compression] }

// Inodes is the number of inodes the superblock counts.
func (fs *FS) Inodes() uint32 { return fs.sb.inodes }

// Fragments is the number of fragment blocks.
func (fs *FS) Fragments() uint32 { return fs.sb.fragments }

// ModTime is the creation time the superblock records.
func (fs *FS) ModTime() time.Time { return time.Unix(int64(fs.sb.mkfsTime), 0) }

// BytesUsed is the length of the image without its padding.
func (fs *FS) BytesUsed() int64 { return int64(fs.sb.bytesUsed) }

// readCompOptions checks the compressor options block that follows the superblock.
func (fs *FS) readCompOptions() error {
	m, err := fs.metaAt(superSize, 0, fs.sb.inodeTable)
	if err != nil {
		return fmt.Errorf("compressor options: %w", err)
	}
	if fs.sb.compression == compXZ {
		var o [8]byte
		if err := m.read(o[:]); err != nil {
			return fmt.Errorf("compressor options: %w", err)
		}
		if dict := binary.LittleEndian.Uint32(o[:]); dict > 1<<20 && dict > uint32(fs.bs) {
			return corrupt("xz dictionary of %d bytes, above the block size", dict)
		}
	}
	if fs.sb.compression == compLZ4 {
		// {version, flags}: version 1 is the lz4 block format, the only one the kernel and
		// squashfs-tools read. The flags (bit 0: written with lz4 HC) do not change decoding
		// and, as in the kernel, are not checked.
		o, _, err := fs.metaBlock(superSize, fs.sb.inodeTable)
		if err != nil {
			return fmt.Errorf("compressor options: %w", err)
		}
		if len(o) < 8 {
			return corrupt("lz4 compressor options of %d bytes, want 8", len(o))
		}
		if v := binary.LittleEndian.Uint32(o); v != lz4Legacy {
			return fmt.Errorf("%w: lz4 stream format version %d (only version 1 is known)", ErrUnsupported, v)
		}
	}
	return nil
}

// readIDs loads the id table.
func (fs *FS) readIDs() error {
	n := int(fs.sb.ids)
	raw, err := fs.lookupTable(fs.sb.idTable, n*4)
	if err != nil {
		return fmt.Errorf("id table: %w", err)
	}
	fs.ids = make([]uint32, n)
	for i := range fs.ids {
		fs.ids[i] = binary.LittleEndian.Uint32(raw[4*i:])
	}
	return nil
}

// lookupTable reads a whole table of n bytes stored as metadata blocks whose positions are
// listed at at (one u64 per 8 KiB of table).
func (fs *FS) lookupTable(at uint64, n int) ([]byte, error) {
	blocks := (n + metaSize - 1) / metaSize
	if at == noTable || at > fs.sb.bytesUsed || uint64(blocks)*8 > fs.sb.bytesUsed-at {
		return nil, corrupt("table index at %d (%d blocks) outside the image", at, blocks)
	}
	idx := make([]byte, 8*blocks)
	if _, err := fs.r.ReadAt(idx, int64(at)); err != nil {
		return nil, fmt.Errorf("squashfs: %w", err)
	}
	out := make([]byte, 0, n)
	for i := range blocks {
		m, err := fs.metaAt(binary.LittleEndian.Uint64(idx[8*i:]), 0, fs.sb.bytesUsed)
		if err != nil {
			return nil, err
		}
		k := min(metaSize, n-len(out))
		out = out[:len(out)+k]
		if err := m.read(out[len(out)-k:]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// lookupEntry reads entry i (size bytes each) of a table whose index starts at at.
func (fs *FS) lookupEntry(at uint64, i uint64, p []byte) error {
	size := uint64(len(p))
	blk, off := i*size/metaSize, i*size%metaSize
	if at == noTable || at > fs.sb.bytesUsed || blk >= (fs.sb.bytesUsed-at)/8 {
		return corrupt("table index entry %d at %d outside the image", blk, at)
	}
	var ptr [8]byte
	if _, err := fs.r.ReadAt(ptr[:], int64(at+8*blk)); err != nil {
		return fmt.Errorf("squashfs: %w", err)
	}
	m, err := fs.metaAt(binary.LittleEndian.Uint64(ptr[:]), int(off), fs.sb.bytesUsed)
	if err != nil {
		return err
	}
	return m.read(p)
}

// readAt reads exactly len(p) bytes at off, which must lie within the used part of the
// image.
func (fs *FS) readAt(p []byte, off uint64) error {
	if off > fs.sb.bytesUsed || uint64(len(p)) > fs.sb.bytesUsed-off {
		return corrupt("%d bytes at %d lie beyond the %d bytes used", len(p), off, fs.sb.bytesUsed)
	}
	n, err := fs.r.ReadAt(p, int64(off))
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("squashfs: reading %d bytes at %d: %w", len(p), off, err)
}
