package squashfs_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/ocirender/ocirender/export"
	"github.com/ocirender/ocirender/index"
	"github.com/ocirender/ocirender/squashfs"
)

// The benchmarks write and read one tree in memory: 8000 small files of text in 40
// directories, 24 multi-block text files (a third of them duplicates), a sparse file, a few
// xattrs.
//
//	go test -run '^$' -bench . -benchtime 3x ./squashfs/

// benchText is n bytes of words drawn at random from a small vocabulary: compressible, but
// not trivially.
func benchText(seed uint64, n int) []byte {
	words := strings.Fields("the quick brown fox jumps over a lazy dog squashfs inode block " +
		"fragment table metadata directory listing header xattr zstd gzip layer image 0 1 2 3 4 5 6 7 8 9")
	r := rand.New(rand.NewPCG(seed, 2))
	b := make([]byte, 0, n+16)
	for len(b) < n {
		b = append(b, words[r.IntN(len(words))]...)
		b = append(b, " \n"[r.IntN(8)/7])
	}
	return b[:n]
}

func benchTree(tb testing.TB) (*index.Index, export.Layers, int64) {
	tb.Helper()
	var nodes []node
	var size int64
	add := func(n node) {
		nodes = append(nodes, n)
		size += int64(len(n.Body)) + n.Zeros
	}
	for d := range 40 {
		add(dirN(fmt.Sprintf("d%02d", d)))
		for f := range 200 {
			n := node{Path: fmt.Sprintf("d%02d/f%03d", d, f), Type: index.Reg, Mode: 0o644,
				Body: benchText(uint64(d*200+f), (d*200+f)*37%9000)}
			if f%50 == 0 {
				n.Xattrs = []index.Xattr{{Name: "user.bench", Value: fmt.Sprint(f)}}
			}
			add(n)
		}
	}
	add(dirN("big"))
	for i := range 24 {
		add(node{Path: fmt.Sprintf("big/%02d", i), Type: index.Reg, Mode: 0o644,
			Body: benchText(uint64(1000+i%16), 1<<20+i%16*1000)})
	}
	add(node{Path: "big/sparse", Type: index.Reg, Mode: 0o644, Zeros: 16 << 20})
	ix, layers := build(tb, nodes...)
	return ix, layers, size
}

// memImage is an io.WriterAt that keeps the image in memory.
type memImage struct{ b []byte }

func (m *memImage) WriteAt(p []byte, off int64) (int, error) {
	if end := int(off) + len(p); end > len(m.b) {
		m.b = append(m.b, make([]byte, end-len(m.b))...)
	}
	return copy(m.b[off:], p), nil
}

func BenchmarkWrite(b *testing.B) {
	ix, layers, size := benchTree(b)
	for _, comp := range []string{squashfs.Zstd, squashfs.LZ4} {
		b.Run(comp, func(b *testing.B) {
			b.SetBytes(size)
			var img memImage
			for b.Loop() {
				img.b = img.b[:0]
				if err := squashfs.Write(context.Background(), &img, ix, layers, squashfs.Options{Compression: comp}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(img.b))/(1<<20), "MB-image")
		})
	}
}

func benchImage(b *testing.B) ([]byte, int64) {
	b.Helper()
	ix, layers, size := benchTree(b)
	var img memImage
	if err := squashfs.Write(context.Background(), &img, ix, layers, squashfs.Options{}); err != nil {
		b.Fatal(err)
	}
	return img.b, size
}

// BenchmarkRead opens the image, walks it and reads every file and xattr.
func BenchmarkRead(b *testing.B) {
	img, size := benchImage(b)
	b.SetBytes(size)
	for b.Loop() {
		sq, err := squashfs.Open(bytes.NewReader(img), int64(len(img)))
		if err != nil {
			b.Fatal(err)
		}
		err = sq.Walk(func(p string, in *squashfs.Inode) error {
			if _, err := sq.Xattrs(in); err != nil {
				return err
			}
			if in.Type != squashfs.Reg {
				return nil
			}
			f, err := sq.OpenFile(in)
			if err != nil {
				return err
			}
			_, err = io.Copy(io.Discard, f)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStat looks up every path of the image.
func BenchmarkStat(b *testing.B) {
	img, _ := benchImage(b)
	sq, err := squashfs.Open(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		b.Fatal(err)
	}
	var paths []string
	if err := sq.Walk(func(p string, _ *squashfs.Inode) error { paths = append(paths, p); return nil }); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		for _, p := range paths {
			if _, err := sq.Stat(p); err != nil {
				b.Fatal(err)
			}
		}
	}
}
