package squashfs

import "encoding/binary"

// On-disk constants of squashfs 4.0 (little endian throughout).
const (
	magic        = 0x73717368 // "hsqs"
	superSize    = 96
	metaSize     = 8192    // uncompressed size of a metadata block
	metaRaw      = 1 << 15 // metadata block header bit: stored uncompressed
	dataRaw      = 1 << 24 // data/fragment block size bit: stored uncompressed
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

// Inode types; the extended variant of a basic type t is t+7.
const (
	typeDir     = 1
	typeReg     = 2
	typeSymlink = 3
	typeBlock   = 4
	typeChar    = 5
	typeFifo    = 6
	typeSocket  = 7
	extended    = 7
)

// Xattr name prefixes and the out-of-line value flag.
const (
	xattrUser     = 0
	xattrTrusted  = 1
	xattrSecurity = 2
	xattrOOL      = 0x0100
)

// superblock is the first 96 bytes of the image.
type superblock struct {
	inodes        uint32
	mkfsTime      uint32
	blockSize     uint32
	fragments     uint32
	compression   uint16
	blockLog      uint16
	flags         uint16
	ids           uint16
	rootInode     uint64
	bytesUsed     uint64
	idTable       uint64
	xattrIDTable  uint64
	inodeTable    uint64
	dirTable      uint64
	fragmentTable uint64
	exportTable   uint64
}

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
	b = le.AppendUint16(b, 4) // major
	b = le.AppendUint16(b, 0) // minor
	for _, v := range []uint64{s.rootInode, s.bytesUsed, s.idTable, s.xattrIDTable,
		s.inodeTable, s.dirTable, s.fragmentTable, s.exportTable} {
		b = le.AppendUint64(b, v)
	}
	return b
}

// metaRef is a reference to a metadata entry: the position of its metadata block relative to
// the start of its table, shifted left 16, or'ed with the offset in the uncompressed block.
func metaRef(block uint64, off uint16) uint64 { return block<<16 | uint64(off) }

// encodeDev packs a device number the way the kernel's new_decode_dev unpacks it: 12 bits of
// major, 20 of minor.
func encodeDev(major, minor uint32) uint32 {
	return minor&0xff | major<<8&0xfff00 | (minor&^0xff)<<12
}
