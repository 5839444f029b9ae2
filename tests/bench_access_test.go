package tests

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/ocirender/ocirender"
	"github.com/ocirender/ocirender/index"
	"github.com/ocirender/ocirender/layer"
)

// Random access (issue 4), on the Debian image's tag benchTag. Targets:
//   - random 4 KiB read in a gzip layer, cold: p50 ≤ 5 ms, p99 ≤ 25 ms; from the span cache
//     ≤ 0.1 ms;
//   - index + checkpoints ≤ 12 MiB per GiB of uncompressed layer;
//   - with a warm cache, `ocirender cat` of any file ≤ 100 ms.

// BenchmarkRandomRead: 4 KiB reads at random offsets of the largest gzip layer, through the
// maps of a cold scan. Cold: every read starts with an empty span cache (decoders parked by
// earlier reads may still help, as in a real mount). Warm: the same offsets again, from the
// span cache.
func BenchmarkRandomRead(b *testing.B) {
	bi := setupBench(b)
	ctx := context.Background()
	cacheDir := b.TempDir()
	var cold, warm []time.Duration
	for b.Loop() {
		rc := layer.NewReadCache(256<<20, 0)
		img, err := ocirender.Open(ctx, bi.layout, ocirender.Options{Ref: benchTag, Content: true, CacheDir: cacheDir, ReadCache: rc})
		if err != nil {
			b.Fatal(err)
		}
		big := 0
		for i, l := range img.Layers() {
			if l.Size > img.Layers()[big].Size {
				big = i
			}
		}
		r := img.Content()[big]
		lr, ok := r.(*layer.Reader)
		if !ok || lr.Map().Access != layer.AccessGzip {
			b.Fatalf("layer %d is not read through gzip checkpoints (%T)", big, r)
		}
		rng := rand.New(rand.NewPCG(1, 2))
		offs := make([]int64, 300)
		for i := range offs {
			offs[i] = rng.Int64N(lr.Size() - 4096)
		}
		p := make([]byte, 4096)
		for _, off := range offs {
			start := time.Now()
			if _, err := r.ReadAt(p, off); err != nil {
				b.Fatal(err)
			}
			cold = append(cold, time.Since(start))
		}
		for _, off := range offs {
			start := time.Now()
			if _, err := r.ReadAt(p, off); err != nil {
				b.Fatal(err)
			}
			warm = append(warm, time.Since(start))
		}
		img.Close()
	}
	b.ReportMetric(ms(percentile(cold, 50)), "ms-cold-p50")
	b.ReportMetric(ms(percentile(cold, 99)), "ms-cold-p99")
	b.ReportMetric(ms(percentile(warm, 50)), "ms-warm-p50")
	b.ReportMetric(ms(percentile(warm, 99)), "ms-warm-p99")
}

func ms(d time.Duration) float64 { return d.Seconds() * 1000 }

// percentile returns the p-th percentile of ds (which it leaves unsorted).
func percentile(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

// BenchmarkIndexCache: the size of the cache entry (index and maps, spills excluded) per GiB
// of uncompressed layers, and the time of a warm `ocirender ls` (cache load) against a cold
// one (full scan with checkpoints) against a cold one without the cache (plain scan).
func BenchmarkIndexCache(b *testing.B) {
	bi := setupBench(b)
	var coldPlain, cold, warm usage
	var perGiB float64
	for b.Loop() {
		cacheDir := b.TempDir()
		coldPlain.add(measure(b, os.DevNull, ocirenderBin(b), "ls", "-q", "--no-cache", "--ref", benchTag, bi.layout))
		cold.add(measure(b, os.DevNull, ocirenderBin(b), "ls", "-q", "--cache-dir", cacheDir, "--ref", benchTag, bi.layout))
		warm.add(measure(b, os.DevNull, ocirenderBin(b), "ls", "-q", "--cache-dir", cacheDir, "--ref", benchTag, bi.layout))
		files, _ := filepath.Glob(filepath.Join(cacheDir, "index", "*"))
		if len(files) != 1 {
			b.Fatalf("%d cache files", len(files))
		}
		fi, err := os.Stat(files[0])
		if err != nil {
			b.Fatal(err)
		}
		perGiB = float64(fi.Size()) / (1 << 20) / (float64(bi.uncompressed) / (1 << 30))
	}
	n := float64(b.N)
	b.ReportMetric(perGiB, "MiB-cache/GiB")
	b.ReportMetric(cold.wall.Seconds()/coldPlain.wall.Seconds(), "x-wall-scan-with-cache-vs-without")
	b.ReportMetric(warm.wall.Seconds()/n*1000, "ms-wall-warm-ls")
	b.ReportMetric(cold.wall.Seconds()/n*1000, "ms-wall-cold-ls")
}

// BenchmarkCat: `ocirender cat` of the regular file stored last in a layer, with a warm
// cache and cold, against `tar -xzOf` of that layer (the way to get one file without us): for
// the last layer (small) and for the largest one.
func BenchmarkCat(b *testing.B) {
	bi := setupBench(b)
	requireGNUTar(b)
	ctx := context.Background()
	img, err := ocirender.Open(ctx, bi.layout, ocirender.Options{Ref: benchTag})
	if err != nil {
		b.Fatal(err)
	}
	last, largest := len(img.Layers())-1, 0
	for i, l := range img.Layers() {
		if l.Size > img.Layers()[largest].Size {
			largest = i
		}
	}
	// lastFile is the path of the regular file whose data lies furthest into layer l.
	lastFile := func(l int) string {
		var path string
		var best int64 = -1
		img.Index.Walk(0, func(id index.ID, p string) error {
			in := img.Index.Inode(img.Index.Ino(id))
			if in.Type == index.Reg && in.Layer == l && in.Offset > best {
				best, path = in.Offset, p
			}
			return nil
		})
		if path == "" {
			b.Fatalf("layer %d has no regular file", l)
		}
		return path
	}
	cases := []struct {
		name  string
		layer int
		path  string
	}{{"last-layer", last, lastFile(last)}, {"largest-layer", largest, lastFile(largest)}}
	img.Close()
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			var warm, cold, tarx usage
			for b.Loop() {
				cacheDir := b.TempDir()
				cold.add(measure(b, os.DevNull, ocirenderBin(b), "cat", "-q", "--cache-dir", cacheDir, "--ref", benchTag, bi.layout, "/"+c.path))
				warm.add(measure(b, os.DevNull, ocirenderBin(b), "cat", "-q", "--cache-dir", cacheDir, "--ref", benchTag, bi.layout, "/"+c.path))
				tarx.add(measure(b, os.DevNull, "tar", "-xzOf", bi.blobs[c.layer], c.path))
			}
			n := float64(b.N)
			b.ReportMetric(warm.wall.Seconds()/n*1000, "ms-wall-warm-cat")
			b.ReportMetric(cold.wall.Seconds()/n*1000, "ms-wall-cold-cat")
			b.ReportMetric(tarx.wall.Seconds()/n*1000, "ms-wall-tar-xzOf")
			b.ReportMetric(warm.wall.Seconds()/tarx.wall.Seconds(), "x-wall-warm-cat-vs-tar")
		})
	}
}

// BenchmarkExportTarCached: a tar export of an image whose index is cached reads only live
// file content, through the checkpoints (no scan), against a cold export (scan and spool) and
// `pigz -dc` of the layers.
func BenchmarkExportTarCached(b *testing.B) {
	bi := setupBench(b)
	cacheDir := b.TempDir()
	measure(b, os.DevNull, ocirenderBin(b), "ls", "-q", "--cache-dir", cacheDir, "--ref", benchTag, bi.layout)
	var warm, cold, peer usage
	for b.Loop() {
		peer.add(measure(b, os.DevNull, "pigz", append([]string{"-dc"}, bi.blobs...)...))
		cold.add(measure(b, os.DevNull, ocirenderBin(b), "export", "-q", "--no-cache", "--format", "tar", "-o", "-", "--ref", benchTag, bi.layout))
		warm.add(measure(b, os.DevNull, ocirenderBin(b), "export", "-q", "--cache-dir", cacheDir, "--format", "tar", "-o", "-", "--ref", benchTag, bi.layout))
	}
	report(b, warm, peer, "pigz", bi.entries)
	b.ReportMetric(warm.wall.Seconds()/cold.wall.Seconds(), "x-wall-vs-cold-export")
}
