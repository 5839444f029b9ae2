package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/ocirender/ocirender/internal/registrytest"
)

// BenchmarkPullSquashfs: `ocirender pull --format squashfs` of a 3-layer image (the Debian
// tag "rework": 95 MB, 3.7 MB and 1 KB of gzip) from a registry on 127.0.0.1, which scans each
// layer as its download completes, against pulling the image first (`pull --format oci`) and
// converting it after (`export --format squashfs`), in the same iteration. Both start with no
// cache. Run at loopback speed and with blob downloads throttled to 40 MB/s, a fast network.
func BenchmarkPullSquashfs(b *testing.B) {
	bi := setupBench(b)
	reg := registrytest.New(b, "", "")
	ref := reg.Push(b, bi.layout, "rework", "debian:rework")
	work := b.TempDir()
	for _, c := range []struct {
		name string
		rate int64
	}{{"loopback", 0}, {"40MB-s", 40 << 20}} {
		b.Run(c.name, func(b *testing.B) {
			reg.Throttle(c.rate)
			defer reg.Throttle(0)
			var streamed, pullOnly, convert usage
			i := 0
			for b.Loop() {
				i++
				out := filepath.Join(work, fmt.Sprint("streamed", i, ".sqfs"))
				streamed.add(measure(b, "", ocirenderBin(b), "pull", "-q", "--no-cache", "--format", "squashfs", "-o", out, ref))
				layout := filepath.Join(work, fmt.Sprint("layout", i))
				pullOnly.add(measure(b, "", ocirenderBin(b), "pull", "-q", "--no-cache", "--format", "oci", "-o", layout, ref))
				out2 := filepath.Join(work, fmt.Sprint("after", i, ".sqfs"))
				convert.add(measure(b, "", ocirenderBin(b), "export", "-q", "--no-cache", "--format", "squashfs", "-o", out2, layout))
				b.StopTimer()
				if fileSum(b, out) != fileSum(b, out2) {
					b.Fatal("the streamed squashfs differs from the converted one")
				}
				for _, p := range []string{out, out2, layout} {
					os.RemoveAll(p)
				}
				b.StartTimer()
			}
			n := float64(b.N)
			then := pullOnly.wall + convert.wall
			b.ReportMetric(streamed.wall.Seconds()/n, "s-wall")
			b.ReportMetric(then.Seconds()/n, "s-wall-pull-then-convert")
			b.ReportMetric(pullOnly.wall.Seconds()/n, "s-wall-pull-only")
			b.ReportMetric(streamed.wall.Seconds()/then.Seconds(), "x-wall-vs-pull-then-convert")
			b.ReportMetric(streamed.cpu.Seconds()/(pullOnly.cpu+convert.cpu).Seconds(), "x-cpu-vs-pull-then-convert")
			b.ReportMetric(float64(streamed.rssKB)/1024, "MB-peak-rss")
		})
	}
}
