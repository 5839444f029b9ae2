package squashfs

import (
	"encoding/binary"
	"fmt"
	"io"
	"math/bits"
	"sync"
	"time"
)

// Limits of the reader, beyond the format's own.
const (
	maxSymlink   = 4096    // the kernel refuses longer targets (PAGE_SIZE)
	maxXattrSize = 1 << 16 // Linux's XATTR_SIZE_MAX
	maxDirLen    = 1 << 20 // entries of one directory
	// MaxDepth bounds how deep Walk descends.
	MaxDepth = 4096
)

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
	if sb.major != versionMajor || sb.minor != versionMinor {
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
