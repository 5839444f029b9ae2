package squashfs_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/ocirender/ocirender/index"
	"github.com/ocirender/ocirender/squashfs"
)

// FuzzOpen feeds the reader arbitrary images: whatever the bytes, Open, Walk, Stat, Xattrs
// and reading files return data or an error, never panic, and never allocate more than the
// image justifies.
//
//	go test -run '^$' -fuzz FuzzOpen -fuzztime 1m ./squashfs
func FuzzOpen(f *testing.F) {
	f.Add(simple().bytes())
	f.Add(rootWith(rawEntry{name: "a"}, rawEntry{name: "b"}))
	f.Add(xattrImage(func(r *rawImage) {
		v := r.kvEntry(1, "shared", strings.Repeat("s", 30), 0, false)
		start := ref(len(r.kv))
		r.kvEntry(0, "inline", "x", 0, false)
		r.kvEntry(2, "capability", "", v, true)
		r.xids = [][3]uint64{{start, 2, 40}}
	}))
	small := []node{
		dirN("d").With(func(n *node) { n.Xattrs = []index.Xattr{{Name: "user.a", Value: strings.Repeat("v", 20)}} }),
		regN("d/f", "hello").With(func(n *node) { n.Xattrs = []index.Xattr{{Name: "user.b", Value: strings.Repeat("v", 20)}} }),
		{Path: "d/big", Type: index.Reg, Mode: 0o644, Body: bytes.Repeat([]byte("0123456789"), 1000)},
		{Path: "d/zeros", Type: index.Reg, Mode: 0o644, Zeros: 9000},
		hardN("d/g", "d/f"),
		symN("s", "d/f"),
		{Path: "c", Type: index.Char, Mode: 0o600, Major: 1, Minor: 3},
		{Path: "p", Type: index.Fifo, Mode: 0o600},
	}
	ix, layers := build(f, small...)
	for _, comp := range []string{squashfs.Gzip, squashfs.Zstd, squashfs.XZ, squashfs.LZ4} {
		img := writeImage(f, ix, layers, squashfs.Options{Compression: comp, BlockSize: 4096})
		sq, err := squashfs.Open(bytes.NewReader(img), int64(len(img)))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(img[:sq.BytesUsed()]) // without the padding: small seeds minimise fast
	}
	f.Fuzz(func(t *testing.T, img []byte) {
		sq, err := squashfs.Open(bytes.NewReader(img), int64(len(img)))
		if err != nil {
			if !errors.Is(err, squashfs.ErrCorrupt) && !errors.Is(err, squashfs.ErrNotSquashfs) &&
				!errors.Is(err, squashfs.ErrUnsupported) {
				t.Fatalf("Open = %v, want one of the package's errors", err)
			}
			return
		}
		budget := int64(1 << 20) // bytes of content read, in all: keeps each run fast
		var names []string
		sq.Walk(func(p string, in *squashfs.Inode) error {
			names = append(names, p)
			sq.Xattrs(in)
			if in.Type == squashfs.Reg && budget > 0 {
				r, err := sq.OpenFile(in)
				if err != nil {
					t.Fatalf("OpenFile of a file = %v", err)
				}
				n, _ := io.Copy(io.Discard, io.LimitReader(r, budget))
				budget -= n
				r.ReadAt(make([]byte, 10), in.Size/2)
			}
			return nil
		})
		for _, p := range names[:min(len(names), 50)] {
			sq.Stat(p)
		}
		sq.Stat("d/missing")
	})
}
