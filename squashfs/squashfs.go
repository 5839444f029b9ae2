// Package squashfs is ocirender's squashfs 4.0: the on-disk format, a writer that turns the
// merged tree of an index into an image the Linux kernel mounts, and a reader that opens any
// image (ours or mksquashfs's) without mounting it, all without mksquashfs, squashfuse or
// cgo.
//
// The format (superblock, constants, inode types, compressor ids, metadata blocks) is
// defined once, in format.go and meta.go, and shared by Write and Open. Sharing it means a
// misreading of the format would be repeated by both, so neither judges the other alone:
// the writer's tests have the kernel, unsquashfs and squashfuse read its images, and the
// reader's read mksquashfs's images as well as ours.
//
// It leaves to others what is not squashfs: merging layers into a tree (packages overlay and
// index), reading layer content (Write takes it as export.Layers), comparing an image with
// the image it came from (package verify walks an FS against the index), the output file
// and its temporary name (export.WriteFileAtomic, called by the module root's Convert), and
// mounting (the kernel or squashfuse; ocimount mounts the index, not a squashfs).
//
// # Writing
//
//	f, _ := os.Create("rootfs.sqfs")
//	err := squashfs.Write(ctx, f, ix, layers, squashfs.Options{Compression: squashfs.Zstd})
//
// # What Write writes
//
// Every inode type (directory, file, symlink, character and block device, fifo, socket); the
// basic inode form wherever it can hold the inode and the extended form where it is needed
// (xattrs, hard-linked files, files or positions beyond 4 GiB, holes, large or indexed
// directories). Hard links are one inode with its link count. Owners go through the id table
// (at most 65535 distinct uids and gids: the superblock counts them in 16 bits). Xattrs in the
// user., trusted. and security. namespaces are kept byte-exact; identical sets are stored once
// and a value seen before is stored as a reference to its first copy. Other namespaces cannot
// be expressed in squashfs: they are left out with a notice.
//
// File data is cut into blocks (128 KiB by default). A block of zeros is a hole (no bytes on
// disk), a block that does not compress is stored raw. The tail of every file (and every file
// smaller than a block) is packed into fragment blocks. Files with identical content share
// their blocks and tails; identical tails of different files are stored once.
//
// Directories list their entries bytewise sorted, under headers of at most 256 entries that
// also start anew when the inode block changes, the inode number delta leaves 16 bits or the
// listing enters a new metadata block; a directory whose listing spans metadata blocks gets a
// directory index. Options.Exportable adds the NFS export table.
//
// Tables follow the data in the order the kernel checks since 5.11: inode table, directory
// table, fragment table, export table, id table, xattr table, each lookup table's index
// immediately followed by the next table; the image is padded to 4 KiB.
//
// # Time
//
// Squashfs stores times in whole seconds (unsigned 32 bits): mtimes are truncated to the
// second (and clamped to 1970..2106), directories included. The superblock's creation time
// is Options.MkfsTime, by default the newest mtime in the tree, so the same image always gives
// the same bytes.
//
// # Order and memory
//
// File data streams through Options.Threads compressor goroutines and is written in a fixed
// order (files sorted by layer and offset, which is also the fastest order to read them), so
// the output does not depend on the number of threads. At most 2×Threads+2 blocks are in
// flight. Metadata (inodes, directories, tables) is built in memory, compressed.
//
// # Reading
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
// symlink targets are at most 4096 bytes, xattr values 64 KiB (4 MiB for the set of one
// inode), names 256 bytes, a directory at most 1 Mi entries, and a file's block list is
// read as the file is, never loaded whole. Walk refuses a directory inode or listing met twice, which is how a cycle
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
	// ErrTooManyIDs: Write was given a tree with more distinct uids and gids than the id
	// table can count.
	ErrTooManyIDs = errors.New("squashfs: more than 65535 distinct uids and gids")
)

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}
