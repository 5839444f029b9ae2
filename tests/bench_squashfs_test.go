package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
)

// BenchmarkExportSquashfs: `ocirender export --format squashfs` of the Debian image (benchTag)
// against (a) tar2sqfs packing the merged tar of the image, already in a file, and (b) umoci
// unpack followed by mksquashfs, all with the same compressor, level and block size, in the
// same iteration. Targets: wall ≤ 1.0× tar2sqfs alone, ≤ 0.15× umoci+mksquashfs; size ≤ 1.02×
// mksquashfs's; peak RSS ≤ 200 MB + 300 B/entry.
func BenchmarkExportSquashfs(b *testing.B) {
	bi := setupBench(b)
	requireTools(b, "tar2sqfs", "mksquashfs")
	work := b.TempDir()
	merged := filepath.Join(work, "merged.tar")
	measure(b, "", ocirenderBin(b), "export", "-q", "--format", "tar", "-o", merged, "--ref", benchTag, bi.layout)
	jobs := strconv.Itoa(runtime.NumCPU())
	const bs = 128 << 10

	for _, c := range []struct {
		name, comp string
		level      int
		tar2sqfsX  string
		mksquashfs []string
	}{
		{"zstd-3", "zstd", 3, "level=3", []string{"-comp", "zstd", "-Xcompression-level", "3"}},
		{"gzip-9", "gzip", 9, "level=9", []string{"-comp", "gzip", "-Xcompression-level", "9"}},
	} {
		b.Run(c.name, func(b *testing.B) {
			var ours, t2s, umoci, mksq usage
			var oursSize, t2sSize, mksqSize int64
			i := 0
			for b.Loop() {
				i++
				out := filepath.Join(work, fmt.Sprint("ours", i, ".sqfs"))
				ours.add(measure(b, "", ocirenderBin(b), "export", "-q", "--no-cache", "--format", "squashfs", "-o", out,
					"--compression", c.comp, "--level", strconv.Itoa(c.level), "--block-size", strconv.Itoa(bs),
					"--ref", benchTag, bi.layout))
				oursSize = fileSize(b, out)

				t2sOut := filepath.Join(work, fmt.Sprint("tar2sqfs", i, ".sqfs"))
				t2s.add(measure(b, "", "sh", "-c", `exec tar2sqfs -q -f -c "$1" -X "$2" -b "$3" -j "$4" "$5" < "$6"`, "sh",
					c.comp, c.tar2sqfsX, strconv.Itoa(bs), jobs, t2sOut, merged))
				t2sSize = fileSize(b, t2sOut)

				bundle := filepath.Join(work, fmt.Sprint("bundle", i))
				umoci.add(measure(b, "", "umoci", "unpack", "--image", bi.layout+":"+benchTag, bundle))
				mkOut := filepath.Join(work, fmt.Sprint("mksquashfs", i, ".sqfs"))
				mksq.add(measure(b, "", "mksquashfs", append([]string{filepath.Join(bundle, "rootfs"), mkOut,
					"-noappend", "-quiet", "-no-progress", "-b", strconv.Itoa(bs), "-processors", jobs}, c.mksquashfs...)...))
				mksqSize = fileSize(b, mkOut)

				b.StopTimer()
				for _, p := range []string{out, t2sOut, mkOut, bundle} {
					os.RemoveAll(p)
				}
				b.StartTimer()
			}
			unpackAndPack := umoci
			unpackAndPack.add(mksq)
			unpackAndPack.wall = umoci.wall + mksq.wall
			unpackAndPack.cpu = umoci.cpu + mksq.cpu
			n := float64(b.N)
			b.ReportMetric(ours.wall.Seconds()/n, "s-wall")
			b.ReportMetric(ours.cpu.Seconds()/n, "s-cpu")
			b.ReportMetric(t2s.wall.Seconds()/n, "s-wall-tar2sqfs")
			b.ReportMetric(unpackAndPack.wall.Seconds()/n, "s-wall-umoci+mksquashfs")
			b.ReportMetric(ours.wall.Seconds()/t2s.wall.Seconds(), "x-wall-vs-tar2sqfs")
			b.ReportMetric(ours.cpu.Seconds()/t2s.cpu.Seconds(), "x-cpu-vs-tar2sqfs")
			b.ReportMetric(ours.wall.Seconds()/unpackAndPack.wall.Seconds(), "x-wall-vs-umoci+mksquashfs")
			b.ReportMetric(ours.cpu.Seconds()/unpackAndPack.cpu.Seconds(), "x-cpu-vs-umoci+mksquashfs")
			b.ReportMetric(float64(oursSize)/float64(mksqSize), "x-size-vs-mksquashfs")
			b.ReportMetric(float64(oursSize)/float64(t2sSize), "x-size-vs-tar2sqfs")
			b.ReportMetric(float64(oursSize)/(1<<20), "MB-image")
			b.ReportMetric(float64(ours.rssKB)/1024, "MB-peak-rss")
			b.ReportMetric(float64(t2s.rssKB)/1024, "MB-peak-rss-tar2sqfs")
			// The RSS target is 200 MB + 300 bytes per entry: report the per-entry part.
			b.ReportMetric(max(0, float64(ours.rssKB*1024-200<<20))/float64(bi.entries), "B-rss-above-200MB/entry")
		})
	}
}

func fileSize(b *testing.B, p string) int64 {
	b.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		b.Fatal(err)
	}
	return fi.Size()
}
