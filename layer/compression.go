package layer

import (
	"bytes"
	"strconv"
)

// Compression is the compression format of a layer blob.
type Compression int

// The compression formats a layer can use.
const (
	Uncompressed Compression = iota
	Gzip
	Zstd
	Bzip2
	Xz
)

var compressionNames = [...]string{
	Uncompressed: "uncompressed",
	Gzip:         "gzip",
	Zstd:         "zstd",
	Bzip2:        "bzip2",
	Xz:           "xz",
}

// String returns the lowercase name of the format, as used in messages.
func (c Compression) String() string {
	if c.valid() {
		return compressionNames[c]
	}
	return "compression(" + strconv.Itoa(int(c)) + ")"
}

func (c Compression) valid() bool { return c >= 0 && int(c) < len(compressionNames) }

// The magic bytes Detect looks for.
var (
	gzipMagic  = []byte{0x1f, 0x8b, 0x08} // ID1 ID2 CM=deflate (the only method RFC 1952 defines)
	zstdMagic  = []byte{0x28, 0xb5, 0x2f, 0xfd}
	bzip2Magic = []byte("BZh") // then the block size '1'..'9', then a block or the end of the stream
	bzip2Block = []byte{0x31, 0x41, 0x59, 0x26, 0x53, 0x59}
	bzip2End   = []byte{0x17, 0x72, 0x45, 0x38, 0x50, 0x90}
	xzMagic    = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}
)

// zstdSkippable reports whether head starts a zstd skippable frame
// (magic 0x184D2A50..0x184D2A5F, little endian). A zstd stream may begin with one.
func zstdSkippable(head []byte) bool {
	return len(head) >= 4 && head[0]&0xf0 == 0x50 && head[1] == 0x2a && head[2] == 0x4d && head[3] == 0x18
}

// Detect reports the compression format whose magic bytes start head:
// gzip 1f 8b 08, zstd 28 b5 2f fd or a zstd skippable frame, bzip2 "BZh",
// xz fd "7zXZ" 00. Anything else, including a head too short to hold a whole
// magic number, is Uncompressed.
//
// The checks go a little past the bare magic numbers (the gzip method byte;
// the bzip2 block size digit and the magic of the first block) so that a
// plain tar whose first file is named "BZh..." is not taken for bzip2.
func Detect(head []byte) Compression {
	switch {
	case bytes.HasPrefix(head, gzipMagic):
		return Gzip
	case bytes.HasPrefix(head, zstdMagic), zstdSkippable(head):
		return Zstd
	case isBzip2(head):
		return Bzip2
	case bytes.HasPrefix(head, xzMagic):
		return Xz
	}
	return Uncompressed
}

// magicPrefix reports whether head, shorter than c's magic number, could
// be the start of it: a stream cut off inside its magic.
func magicPrefix(c Compression, head []byte) bool {
	var magic []byte
	switch c {
	case Gzip:
		magic = gzipMagic
	case Zstd:
		magic = zstdMagic
	case Bzip2:
		magic = bzip2Magic
	case Xz:
		magic = xzMagic
	}
	return len(head) < len(magic) && bytes.HasPrefix(magic, head)
}

func isBzip2(head []byte) bool {
	if len(head) < 10 || !bytes.HasPrefix(head, bzip2Magic) || head[3] < '1' || head[3] > '9' {
		return false
	}
	return bytes.HasPrefix(head[4:], bzip2Block) || bytes.HasPrefix(head[4:], bzip2End)
}
