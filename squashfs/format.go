package squashfs

import (
	"encoding/binary"
	"fmt"
)

// On-disk constants of squashfs 4.0 (little endian throughout).
const (
	magic        = 0x73717368 // "hsqs"
	magicSwapped = 0x68737173 // "sqsh": big-endian images (squashfs 1-3)
	versionMajor = 4
	versionMinor = 0
	superSize    = 96
	metaSize     = 8192    // uncompressed size of a metadata block, at most
	metaRaw      = 1 << 15 // metadata block header bit: stored uncompressed
	dataRaw      = 1 << 24 // data/fragment block size word bit: stored uncompressed
	noFragment   = 0xffffffff
	noXattr      = 0xffffffff
	noTable      = ^uint64(0)
	devBlockSize = 4096 // the image is padded to a multiple of this
	maxDirCount  = 256  // entries after one directory header, at most
	maxNameLen   = 256  // bytes of one name, at most (the kernel's SQUASHFS_NAME_LEN)
	maxIDs       = 65535
	dirSizeExtra = 3 // directory inodes count "." and ".." as 3 bytes of listing
)

// Superblock flags.
const (
	flagDuplicates = 0x0040
	flagExportable = 0x0080
	flagNoXattrs   = 0x0200
	flagCompOpts   = 0x0400
)

// The compressors, by the name Options.Compression takes and FS.Compression returns.
const (
	Zstd = "zstd"
	Gzip = "gzip"
	XZ   = "xz"
	LZ4  = "lz4"
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

var compNames = map[uint16]string{compGzip: Gzip, compLZMA: "lzma", compLZO: "lzo", compXZ: XZ,
	compLZ4: LZ4, compZstd: Zstd}

// The lz4 compressor options block: the only stream format squashfs knows (version 1, the
// lz4 block format), and its one flag (written with lz4 HC).
const (
	lz4Legacy = 1
	lz4HC     = 1
)

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

// parseSuper reads the superblock after its magic, which the caller checks.
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

// marshal is the inverse of parseSuper, magic included.
func (s *superblock) marshal() []byte {
	b := make([]byte, 0, superSize)
	le := binary.LittleEndian
	b = le.AppendUint32(b, magic)
	b = le.AppendUint32(b, s.inodes)
	b = le.AppendUint32(b, s.mkfsTime)
	b = le.AppendUint32(b, s.blockSize)
	b = le.AppendUint32(b, s.fragments)
	b = le.AppendUint16(b, s.compression)
	b = le.AppendUint16(b, s.blockLog)
	b = le.AppendUint16(b, s.flags)
	b = le.AppendUint16(b, s.ids)
	b = le.AppendUint16(b, s.major)
	b = le.AppendUint16(b, s.minor)
	for _, v := range []uint64{s.rootInode, s.bytesUsed, s.idTable, s.xattrIDTable,
		s.inodeTable, s.dirTable, s.fragmentTable, s.exportTable} {
		b = le.AppendUint64(b, v)
	}
	return b
}

// metaRef is a reference to a metadata entry: the position of its metadata block relative to
// the start of its table, shifted left 16, or'ed with the offset in the uncompressed block.
func metaRef(block uint64, off uint16) uint64 { return block<<16 | uint64(off) }

// Type is the file type of an inode, numbered as squashfs's basic inode types; the extended
// form of basic type t is t+extended.
type Type uint8

// The file types.
const (
	Dir Type = iota + 1
	Reg
	Symlink
	Block
	Char
	Fifo
	Socket
)

// extended is what the extended form of a basic type adds to its number.
const extended = 7

var typeNames = [...]string{"?", "dir", "file", "symlink", "block", "char", "fifo", "socket"}

func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// encodeDev packs a device number the way the kernel's new_decode_dev unpacks it: 12 bits of
// major, 20 of minor.
func encodeDev(major, minor uint32) uint32 {
	return minor&0xff | major<<8&0xfff00 | (minor&^0xff)<<12
}

// decodeDev is the inverse of encodeDev.
func decodeDev(dev uint32) (major, minor uint32) {
	return dev >> 8 & 0xfff, dev&0xff | dev>>12&0xfff00
}

// Xattr name prefixes by type, and the flag of a value stored out of line.
var xattrPrefixes = [...]string{"user.", "trusted.", "security."}

const xattrOOL = 0x0100
