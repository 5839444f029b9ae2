package main

import (
	"archive/tar"
	"strings"
	"time"

	"github.com/ocirender/ocirender/internal/imagetest"
)

// o is the tree mkimage.sh fills with test constructs.
const o = "opt/oci"

var layers = map[string]func() []byte{
	"raw-links":     func() []byte { return defaults.Layer(rawLinks()...) },
	"raw-whiteouts": func() []byte { return defaults.Layer(rawWhiteouts()...) },
}

// defaults are for what the entries below leave zero, not the package's: mtimes with
// nanoseconds, so PAX headers carry them, and symlinks 0777, as a file system has them.
var defaults = imagetest.Options{Mtime: time.Date(2020, 1, 2, 3, 4, 5, 123456789, time.UTC), SymlinkMode: 0o777}

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

var (
	longDir  = o + "/raw/long/" + strings.Repeat("x", 150)
	longFile = longDir + "/" + strings.Repeat("y", 200)
	gnuDir   = o + "/raw/gnu"
)

// rawLinks goes on top of the "rework" tag. Hard links across layers,
// explicit opaque markers, writes through symlinked parents, long names
// in PAX and GNU form, PAX-only numbers, xattrs and name cleaning.
func rawLinks() []imagetest.Entry {
	const (
		dir  = tar.TypeDir
		link = tar.TypeLink
		sym  = tar.TypeSymlink
	)
	return []imagetest.Entry{
		// The root entry sets root metadata; ns mtime via PAX.
		{Name: "./", Type: dir, Mode: 0o755, Mtime: ts("2023-05-06T07:08:09.987654321Z")},
		// "./" prefix is cleaned.
		{Name: "./" + o + "/raw/", Type: dir, Mtime: ts("2023-01-01T00:00:00.000000001Z")},

		// Hard links whose target exists only in a lower layer.
		{Name: o + "/raw/link-to-lower", Type: link, Link: o + "/hl/b"},
		{Name: o + "/raw/link-into-group", Type: link, Link: o + "/hl/sub/e"},      // joins the d/e group
		{Name: o + "/raw/link-via-symlinked-parent", Type: link, Link: "bin/true"}, // bin -> usr/bin
		{Name: o + "/raw/link-dot-slash", Type: link, Link: "./etc/hostname"},
		{Name: o + "/raw/link-absolute", Type: link, Link: "/etc/passwd"},
		{Name: o + "/raw/link-to-symlink", Type: link, Link: o + "/sym/rel"}, // another name of the symlink
		// A hard link's own header metadata is ignored: the inode keeps its own.
		{Name: o + "/raw/link-odd-meta", Type: link, Link: o + "/files/seq", Mode: 0o777, UID: 99, GID: 99,
			Mtime: ts("1999-09-09T09:09:09Z")},

		// A link binds to the inode its target names at that moment.
		{Name: o + "/raw/keeps-old", Type: link, Link: o + "/replace/old1"}, // then old1 is replaced
		{Name: o + "/replace/old1", Body: "v2 of old1\n"},
		{Name: o + "/replace/old2", Body: "v2 of old2\n"},
		{Name: o + "/raw/gets-new", Type: link, Link: o + "/replace/old2"}, // binds to the new old2
		{Name: o + "/raw/survivor", Type: link, Link: o + "/replace/doomed"},
		{Name: o + "/replace/.wh.doomed"}, // the name goes, the survivor keeps the content

		// Opaque markers. Same-layer entries survive whatever the order.
		{Name: "etc/apt/apt.conf.d/50raw", Body: "// written before the opaque marker\n"},
		{Name: "etc/apt/apt.conf.d/.wh..wh..opq"}, // hides 99ocirender; the dir keeps its metadata
		{Name: o + "/opaque2/.wh..wh..opq"},
		{Name: o + "/opaque2/", Type: dir, Mode: 0o700, UID: 5, GID: 6, Mtime: ts("2022-06-07T08:09:10.5Z")},
		{Name: o + "/opaque2/new", Body: "the only child\n"},
		{Name: o + "/raw/newdir/", Type: dir},
		{Name: o + "/raw/newdir/.wh..wh..opq"}, // opaque over nothing lower: no-op

		// Parents that are symlinks in a lower layer are followed inside the root.
		{Name: "lib/ocirender-raw.txt", Body: "lib -> usr/lib\n"},
		{Name: o + "/tree/via/through.txt", Body: "via -> realdir (dir replaced by a symlink in rework)\n"},
		{Name: o + "/sym/abs-dir/abs-through.txt", Body: "abs-dir -> /opt/oci/tree/realdir\n"},
		{Name: o + "/sym/escape/escape-through.txt", Body: "escape -> ../../../../../../usr/share, .. stops at /\n"},

		// Long names: PAX path and linkpath, GNU 'L' and 'K' records.
		{Name: o + "/raw/long/", Type: dir},
		{Name: longDir + "/", Type: dir},
		{Name: longFile, Body: "a 370-byte path\n", Mode: 0o640},
		{Name: o + "/raw/long-symlink", Type: sym, Link: "long/" + strings.Repeat("x", 150) + "/" + strings.Repeat("y", 200)},
		{Name: o + "/raw/long-hardlink", Type: link, Link: longFile},
		{Name: gnuDir + "/", Type: dir, Format: tar.FormatGNU, Mtime: ts("2021-01-01T00:00:00Z")},
		{Name: gnuDir + "/" + strings.Repeat("g", 180), Body: "GNU long name\n", Format: tar.FormatGNU,
			Mtime: ts("2021-01-01T00:00:01Z")},
		{Name: gnuDir + "/gnu-long-link", Type: sym, Link: strings.Repeat("k", 150), Format: tar.FormatGNU,
			Mtime: ts("2021-01-01T00:00:02Z")},

		// Numbers only PAX can carry, byte-exact xattrs.
		{Name: o + "/raw/big-ids", UID: 5000000, GID: 6000000, Body: "ids above the ustar octal limit\n"},
		{Name: o + "/raw/caps", Mode: 0o755, Body: "#!/bin/sh\n",
			Xattrs: map[string]string{"security.capability": imagetest.CapNetRaw, "user.raw": "a=b\nc\x00d\xff"}},
		// PAX: an empty value deletes the record, so user.empty is not set.
		{Name: o + "/raw/empty-xattr", Xattrs: map[string]string{"user.empty": "", "user.kept": "1"}},
		{Name: o + "/raw/dir-xattr/", Type: dir, Xattrs: map[string]string{"user.dir": "on a directory", "trusted.t": "x"}},
		{Name: o + "/raw/symlink-xattr", Type: sym, Link: "caps", Xattrs: map[string]string{"trusted.sym": "\x00"}},
		{Name: o + "/raw/dev-big", Type: tar.TypeChar, Mode: 0o600, Devmajor: 4095, Devminor: 1048575},
		{Name: o + "/raw/blk", Type: tar.TypeBlock, Mode: 0o660, GID: 6, Devmajor: 8, Devminor: 1},
		{Name: o + "/raw/fifo", Type: tar.TypeFifo, Mode: 0o600},
		{Name: o + "/raw/before-epoch", Mtime: ts("1969-12-31T23:59:58.5Z")},
		// Past the ustar octal limit (2242) but before int64 nanoseconds run out
		// (2262): umoci 0.4.7 wraps later times through UnixNano.
		{Name: o + "/raw/year-2250", Mtime: ts("2250-02-28T12:00:00.25Z")},
		{Name: o + "/raw/setuid-owned", Mode: 0o4711, UID: 1000, GID: 1000, Body: "setuid survives chown\n"},

		// Names that need cleaning.
		{Name: "/" + o + "/raw/leading-slash", Body: "1\n"},
		{Name: "opt//oci/raw//double-slash", Body: "2\n"},
		{Name: o + "/raw/./dot-segment", Body: "3\n"},
		{Name: o + "/raw/newdir/../dotdot-inside", Body: "4\n"},

		// Duplicates within one layer: the last one wins.
		{Name: o + "/raw/dup", Body: "first\n"},
		{Name: o + "/raw/dup", Body: "second\n", Mode: 0o600},
		{Name: o + "/raw/dup-type/", Type: dir},
		{Name: o + "/raw/dup-type", Body: "the file wins\n"},

		// Dir over dir: new metadata, children kept.
		{Name: o + "/modes/", Type: dir, Mode: 0o750, UID: 7, GID: 8, Mtime: ts("2020-10-10T10:10:10.10Z")},

		// AUFS metadata never appears (no children under plnk: umoci would
		// create them, see the end of this file).
		{Name: ".wh..wh.aufs"},
		{Name: ".wh..wh.orph/", Type: dir},
		{Name: ".wh..wh.plnk/", Type: dir},
	}
}

// rawWhiteouts goes on top of "raw-links": whiteouts of subtrees, whiteout
// and re-creation in one layer in both orders, missing parents, and type
// replacements over symlinks and directories.
func rawWhiteouts() []imagetest.Entry {
	const dir = tar.TypeDir
	return []imagetest.Entry{
		{Name: o + "/long/.wh.deep"}, // a whole deep subtree
		{Name: o + "/files/.wh.plain"},
		{Name: o + "/files/plain", Body: "recreated after its whiteout\n"},
		{Name: o + "/files/seq", Body: "recreated before its whiteout\n"}, // raw/link-odd-meta keeps the old inode
		{Name: o + "/files/.wh.seq"},
		{Name: o + "/.wh.never-existed"},
		{Name: o + "/hl/.wh.b"}, // raw/link-to-lower survives with the content

		// Missing parents are created 0755 root:root. umoci gives them (and
		// their first existing ancestor) the unpack time as mtime; the
		// entry for opt/oci below makes the ancestor deterministic again.
		{Name: o + "/implicit/a/b/c.txt", Body: "three missing parents\n"},
		{Name: o + "/", Type: dir, Mtime: ts("2024-02-03T04:05:06.07Z")},

		// A dir entry replaces a symlink to a dir (no --keep-dirlinks).
		{Name: o + "/sym/dirlink/", Type: dir, Mode: 0o700},
		{Name: o + "/sym/dirlink/child", Body: "in the new directory\n"},
		{Name: o + "/dirs/to-file", Body: "was a dir with children\n"},
		{Name: o + "/dirs/to-symlink", Type: tar.TypeSymlink, Link: "to-file"},
		{Name: o + "/dirs/file-to-dir/", Type: dir},
		{Name: o + "/dirs/file-to-dir/inner", Body: "was a file\n"},
		// A whiteout under a symlinked parent removes the target's child.
		{Name: "lib/.wh.ocirender-raw.txt"},
		// A file replaces a dir (holding through.txt); via and abs-dir now dangle.
		{Name: o + "/tree/realdir", Body: "realdir is now a file\n"},
		{Name: o + "/opaque3/.wh..wh..opq"},
		{Name: o + "/opaque3/.wh.gone"}, // redundant with the opaque marker
		{Name: o + "/raw/.wh.dup-type"},
	}
}

// Constructs umoci 0.4.7 cannot serve as an oracle for, left to unit tests
// and to tests/badinput_test.go (each checked by hand with umoci 0.4.7):
//   - PAX global headers ('g'): "unknown typeflag '\x67'", the unpack fails.
//   - children of .wh..wh.plnk/: umoci writes them as ordinary files.
//   - zstd layers: "blob is not correct mediatype" (compared with their gzip
//     twin instead, see recompress.go).
//   - ".wh." with nothing after it: umoci purges the lower children of the
//     directory, like an opaque marker; DESIGN §3.3 makes it an error.
//   - "../x": umoci cleans it to /x inside the root; DESIGN §3.1 makes it an
//     error.
//   - mtimes after 2262: umoci goes through time.UnixNano and wraps (2400
//     became 1901-12-13).
