package tests

import (
	"archive/tar"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/ocirender/ocirender"
	"github.com/ocirender/ocirender/image"
	"github.com/ocirender/ocirender/internal/imagetest"
)

// The benchmarks measure whole commands on the Debian oracle image (tag benchTag) against the
// tools a user would otherwise run, in the same process and the same iteration, and report
// ratios: absolute seconds on a shared machine are noise, ratios of neighbours are not.
//
//	make bench      (go test -run '^$' -bench . -benchtime 3x ./tests)

const benchTag = "latest"

// usage is what one run of a command cost.
type usage struct {
	wall, cpu time.Duration
	rssKB     int64
}

func (u *usage) add(o usage) {
	u.wall += o.wall
	u.cpu += o.cpu
	u.rssKB = max(u.rssKB, o.rssKB)
}

// measure runs a command (stdout to stdoutPath, or discarded) and returns its wall time, CPU
// time (user+system of it and its children) and peak RSS.
//
// The peak RSS comes from GNU time run in between: a child's ru_maxrss starts at the peak of
// the process that forked it, which for a benchmark holding a large fixture would swamp it.
func measure(b *testing.B, stdoutPath string, name string, args ...string) usage {
	b.Helper()
	rssFile := filepath.Join(b.TempDir(), "rss")
	if _, err := os.Stat("/usr/bin/time"); err == nil {
		args = append([]string{"-f", "%M", "-o", rssFile, name}, args...)
		name = "/usr/bin/time"
	}
	cmd := exec.Command(name, args...)
	if stdoutPath != "" {
		f, err := os.Create(stdoutPath)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		cmd.Stdout = f
	}
	var stderr []byte
	start := time.Now()
	out, err := cmd.StderrPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatalf("%s: %v", name, err)
	}
	buf := make([]byte, 4096)
	for {
		n, err := out.Read(buf)
		stderr = append(stderr, buf[:n]...)
		if err != nil {
			break
		}
	}
	if err := cmd.Wait(); err != nil {
		b.Fatalf("%s %v: %v\n%s", name, args, err, stderr)
	}
	wall := time.Since(start)
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	rss := ru.Maxrss
	if out, err := os.ReadFile(rssFile); err == nil {
		if _, err := fmt.Sscan(string(out), &rss); err != nil {
			b.Fatalf("GNU time wrote %q: %v", out, err)
		}
	}
	return usage{wall: wall, cpu: cpu, rssKB: rss}
}

type benchImage struct {
	layout  string
	blobs   []string // layer blob paths of benchTag
	entries int
	index   int64 // bytes of the merged index

	uncompressed int64 // bytes of the layers' uncompressed streams
}

func setupBench(b *testing.B) benchImage {
	b.Helper()
	requireRoot(b, "debootstrap and umoci unpack")
	requireTools(b, "umoci", "debootstrap", "setfattr", "pigz", "zstd", "bash")
	ocirenderBin(b)
	ctx := context.Background()
	layout := buildDebianImage(b, ctx)
	im, err := image.Open(layout, image.Options{Ref: benchTag})
	if err != nil {
		b.Fatal(err)
	}
	defer im.Close()
	bi := benchImage{layout: layout}
	for _, l := range im.Layers {
		bi.blobs = append(bi.blobs, filepath.Join(layout, "blobs", l.Digest.Algorithm().String(), l.Digest.Encoded()))
	}
	img, err := ocirender.Open(ctx, layout, ocirender.Options{Ref: benchTag, CacheDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	bi.entries, bi.index = img.Index.Len(), img.Index.Bytes()
	for i := range img.Layers() {
		bi.uncompressed += img.LayerMap(i).Size
	}
	img.Close()
	return bi
}

func report(b *testing.B, ours, peer usage, peerName string, entries int) {
	n := float64(b.N)
	b.ReportMetric(ours.wall.Seconds()/n, "s-wall")
	b.ReportMetric(ours.cpu.Seconds()/n, "s-cpu")
	b.ReportMetric(peer.wall.Seconds()/n, "s-wall-"+peerName)
	b.ReportMetric(ours.wall.Seconds()/peer.wall.Seconds(), "x-wall-vs-"+peerName)
	b.ReportMetric(ours.cpu.Seconds()/peer.cpu.Seconds(), "x-cpu-vs-"+peerName)
	b.ReportMetric(float64(ours.rssKB)/1024, "MB-peak-rss")
	// The RSS target is 150 MB + 300 bytes per entry: report the per-entry part.
	b.ReportMetric(max(0, float64(ours.rssKB*1024-150<<20))/float64(entries), "B-rss-above-150MB/entry")
}

// BenchmarkExportTar: `ocirender export --format tar -o -` against `pigz -dc` of all layers.
// Target: ≤ 0.6× the wall time of pigz.
func BenchmarkExportTar(b *testing.B) {
	bi := setupBench(b)
	var ours, peer usage
	for b.Loop() {
		peer.add(measure(b, os.DevNull, "pigz", append([]string{"-dc"}, bi.blobs...)...))
		ours.add(measure(b, os.DevNull, ocirenderBin(b), "export", "-q", "--no-cache", "--format", "tar", "-o", "-", "--ref", benchTag, bi.layout))
	}
	report(b, ours, peer, "pigz", bi.entries)
	b.ReportMetric(float64(bi.index)/float64(bi.entries), "B-index/entry")
}

// BenchmarkExportDir: `ocirender export --format dir` against `umoci unpack`, both writing to
// the same filesystem ($TMPDIR). Target: ≤ 0.4× the wall time of umoci.
func BenchmarkExportDir(b *testing.B) {
	bi := setupBench(b)
	work := b.TempDir()
	var ours, peer usage
	i := 0
	for b.Loop() {
		i++
		bundle := filepath.Join(work, fmt.Sprint("umoci", i))
		peer.add(measure(b, "", "umoci", "unpack", "--image", bi.layout+":"+benchTag, bundle))
		out := filepath.Join(work, fmt.Sprint("ours", i))
		ours.add(measure(b, "", ocirenderBin(b), "export", "-q", "--no-cache", "--format", "dir", "-o", out, "--ref", benchTag, bi.layout))
		b.StopTimer()
		os.RemoveAll(bundle)
		os.RemoveAll(out)
		b.StartTimer()
	}
	report(b, ours, peer, "umoci", bi.entries)
}

// BenchmarkManyEntries: peak RSS of `ocirender ls -R` and of a tar export on a synthetic
// image of 300 000 small files. Target: ≤ 150 MB + 300 bytes per entry.
func BenchmarkManyEntries(b *testing.B) {
	const n = 300_000
	layout := manyEntries(b, n)
	var ls, tarExport usage
	for b.Loop() {
		ls.add(measure(b, os.DevNull, ocirenderBin(b), "ls", "-q", "--no-cache", "-R", layout))
		tarExport.add(measure(b, os.DevNull, ocirenderBin(b), "export", "-q", "--no-cache", "--format", "tar", "-o", "-", layout))
	}
	nf := float64(b.N)
	b.ReportMetric(ls.wall.Seconds()/nf, "s-wall-ls")
	b.ReportMetric(tarExport.wall.Seconds()/nf, "s-wall-tar")
	b.ReportMetric(float64(ls.rssKB)/1024, "MB-peak-rss-ls")
	b.ReportMetric(float64(tarExport.rssKB)/1024, "MB-peak-rss-tar")
	b.ReportMetric((float64(max(ls.rssKB, tarExport.rssKB)*1024)-150<<20)/n, "B-rss-above-150MB/entry")
}

// manyEntries writes a layout of one gzip layer holding n entries: directories of 99 files.
func manyEntries(b *testing.B, n int) string {
	layout := filepath.Join(b.TempDir(), "many")
	var entries []imagetest.Entry
	for d := 0; d < n/100; d++ {
		entries = append(entries, imagetest.Entry{Name: fmt.Sprintf("usr/share/pkg%05d/", d), Type: tar.TypeDir})
		for f := 0; f < 99; f++ {
			entries = append(entries, imagetest.Entry{Name: fmt.Sprintf("usr/share/pkg%05d/file-%03d.txt", d, f), Body: "0123456789"})
		}
	}
	l, err := imagetest.CreateLayout(layout)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := l.AddImage("many", imagetest.GzipBlob(e2e.Layer(entries...))); err != nil {
		b.Fatal(err)
	}
	return layout
}
