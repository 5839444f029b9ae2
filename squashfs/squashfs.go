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
	"errors"
	"fmt"
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
