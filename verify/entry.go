// Package verify owns comparing an output of ocirender with a reference.
//
// Both sides are reduced to a flat, sorted list of [Entry] values, one per
// path, that records everything a merged image is made of: type, permission
// bits, ownership, content digest, symlink target, device numbers, xattrs,
// modification time and hard-link grouping. [Compare] then reports every
// field that differs as a [Difference].
//
// Entries come from five sources:
//
//   - [ScanDir]: a directory on disk (the `dir` output, a tar extracted by GNU tar, the
//     rootfs of `umoci unpack`, a mounted squashfs);
//   - [ScanTar]: a tar stream, read without extracting it;
//   - [ScanSquashfs]: a squashfs image, read with package squashfs (no mount, no
//     squashfuse);
//   - [ScanOutput]: whichever of the three [DetectFormat] finds at a path;
//   - [FromIndex]: the merged index of an image, with contents hashed from its layers:
//     what every output of the image must hold.
//
// [Squashed] turns a list into what a squashfs can hold of it (mtimes in whole seconds,
// user/trusted/security xattrs only), so that a squashfs output is compared with what it
// can be, and [CompareIndexes] compares two images without extracting either.
//
// The package deliberately knows nothing about how an image is merged: it
// never decides what the right answer is (that is the index's, built by
// package overlay), it only says whether two trees are the same.
//
// # Paths
//
// Entry.Path is relative to the scanned root and slash-separated, with no
// leading "./" or "/". The root itself has the empty path "", so it sorts
// first and a child's path is simply its name. Paths are raw bytes: names
// with spaces, newlines or invalid UTF-8 are kept as they are on disk.
// Lists are sorted bytewise by Path (Go string order).
package verify

import "fmt"

// Type is the file type of an entry.
type Type uint8

// File types. The zero Type is invalid.
const (
	Reg Type = iota + 1
	Dir
	Symlink
	Char
	Block
	Fifo
	Socket
)

var typeNames = [...]string{
	Reg:     "reg",
	Dir:     "dir",
	Symlink: "symlink",
	Char:    "char",
	Block:   "block",
	Fifo:    "fifo",
	Socket:  "socket",
}

func (t Type) String() string {
	if int(t) < len(typeNames) && typeNames[t] != "" {
		return typeNames[t]
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// Entry describes one path of a tree.
type Entry struct {
	// Path is relative to the root, slash-separated; "" is the root.
	Path string
	Type Type
	// Mode holds the permission bits including setuid, setgid and sticky
	// (mask 07777). Symlinks report what lstat reports (0777 on Linux).
	Mode     uint32
	UID, GID uint32
	// Size is the content length of a regular file; 0 for other types.
	Size int64
	// Digest is the lowercase hex sha256 of a regular file's content.
	Digest string
	// Link is a symlink's target.
	Link string
	// Devmajor and Devminor are set for character and block devices.
	Devmajor, Devminor uint32
	// Xattrs holds extended attributes with byte-exact values; nil when
	// the entry has none.
	Xattrs map[string]string
	// MtimeNs is the modification time in nanoseconds since the epoch.
	MtimeNs int64
	// Inode names the hard-link group of a non-directory that has more than
	// one name inside the scanned tree: it is the first path (bytewise) of
	// the group, so two trees with the same grouping have the same keys.
	// It is "" for entries with a single name in the tree.
	Inode string
}

// summary is a one-line description of an entry used in differences.
func (e *Entry) summary() string {
	s := fmt.Sprintf("%s %04o %d:%d", e.Type, e.Mode, e.UID, e.GID)
	switch e.Type {
	case Reg:
		s += fmt.Sprintf(" size %d", e.Size)
	case Symlink:
		s += fmt.Sprintf(" -> %q", e.Link)
	case Char, Block:
		s += fmt.Sprintf(" %d,%d", e.Devmajor, e.Devminor)
	}
	return s
}

// nameLinkGroups sets Inode, in every group of two or more entries (of indexes for entry)
// that share an inode, to the group's bytewise-first path.
func nameLinkGroups[K comparable](groups map[K][]int, entry func(i int) *Entry) {
	for _, g := range groups {
		if len(g) < 2 {
			continue
		}
		first := entry(g[0]).Path
		for _, i := range g[1:] {
			first = min(first, entry(i).Path)
		}
		for _, i := range g {
			entry(i).Inode = first
		}
	}
}
