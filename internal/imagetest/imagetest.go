// Package imagetest builds the inputs of tests in code: tar layers from a readable list of
// entries ([Layer], with the defaults of [Options] for what an entry leaves zero), blobs
// plain, gzip or zstd ([Blob]), OCI image layouts around them ([WriteLayout], [Layout]),
// re-compressed copies of an existing image ([Layout.Recompress]), and merged indexes for
// the unit tests of what reads one ([Merge]).
//
// The unit tests, fuzz seeds and benchmarks of every package, the end-to-end tests in tests/,
// the hand-made layers of their Debian image (tests/internal/mkfixture) and the demo image
// (mksample) all build their images here. It writes exactly what it is told, including
// things a careful tool would refuse (escaping names, broken digests, whiteouts in odd
// places): judging those is the product's job and the oracles'. Nothing in the product
// imports it.
package imagetest

import (
	"archive/tar"
	"path/filepath"
	"time"
)

// Entry is one tar entry of a layer. Fields left zero get the defaults of [Options].
type Entry struct {
	Name string
	// Type is a tar type flag; 0 means tar.TypeReg.
	Type byte
	// Body is the content of a regular file.
	Body string
	// Mode holds permission bits incl. setuid/setgid/sticky; 0 means the default (see
	// [Options]). Use NoPerm for a real mode of 0.
	Mode     int64
	UID, GID int
	// Link is the target of a symlink or hard link.
	Link string
	// Xattrs become SCHILY.xattr.* PAX records, byte-exact.
	Xattrs             map[string]string
	Devmajor, Devminor int64
	// Mtime zero means the default (see [Options]).
	Mtime time.Time
	// PAX holds extra raw PAX records.
	PAX map[string]string
	// Format 0 means tar.FormatPAX; tar.FormatGNU writes GNU long names.
	Format tar.Format
}

// NoPerm as Entry.Mode asks for permission bits 0000.
const NoPerm = -1

// CapNetRaw is a VFS_CAP_REVISION_2 security.capability value for cap_net_raw+ep: binary,
// with NUL bytes.
const CapNetRaw = "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"

// Reg is a regular file.
func Reg(name, body string) Entry { return Entry{Name: name, Type: tar.TypeReg, Body: body} }

// Dir is a directory.
func Dir(name string) Entry { return Entry{Name: name, Type: tar.TypeDir} }

// Sym is a symlink.
func Sym(name, target string) Entry { return Entry{Name: name, Type: tar.TypeSymlink, Link: target} }

// Hard is a hard link to target.
func Hard(name, target string) Entry { return Entry{Name: name, Type: tar.TypeLink, Link: target} }

// Whiteout hides name (a path) in lower layers.
func Whiteout(name string) Entry {
	dir, base := filepath.Split(name)
	return Reg(dir+".wh."+base, "")
}

// Opaque hides every lower child of dir.
func Opaque(dir string) Entry { return Reg(filepath.Join(dir, ".wh..wh..opq"), "") }

// With returns f changed by fn, for table literals.
func (f Entry) With(fn func(*Entry)) Entry { fn(&f); return f }
