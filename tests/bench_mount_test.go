package tests

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ocirender/ocirender/layer"
)

// The mount benchmarks compare ocimount of the Debian image (tag benchTag) with the two ways a
// user would otherwise browse the same tree: our squashfs export of it, mounted by the kernel
// and by squashfuse. Every iteration mounts all three afresh (no cached dentries, inodes or
// pages of the mounts), with the image's blobs and the squashfs file in the page cache, so
// what is measured is the file systems, not the disk.
//
//	go test -run '^$' -bench Mount -benchtime 3x ./tests

// BenchmarkMountReady: the time from starting ocimount to its ready line, with no cache (it
// builds the index) and with a warm index cache, against `ocirender ls --no-cache` (the index
// build alone). Targets: cold ≤ 1.1× the index build, warm ≤ 150 ms.
func BenchmarkMountReady(b *testing.B) {
	bi := setupBench(b)
	requireFUSE(b)
	var index, cold, warm time.Duration
	for b.Loop() {
		index += measure(b, os.DevNull, ocirenderBin(b), "ls", "-q", "--no-cache", "--ref", benchTag, bi.layout).wall
		m := startMount(b, bi.layout, b.TempDir(), "-q", "--no-cache", "--ref", benchTag)
		cold += m.ready
		m.stop(b)
		cache := b.TempDir()
		startMount(b, bi.layout, b.TempDir(), "-q", "--cache-dir", cache, "--ref", benchTag).stop(b) // fills the cache
		m = startMount(b, bi.layout, b.TempDir(), "-q", "--cache-dir", cache, "--ref", benchTag)
		warm += m.ready
		m.stop(b)
	}
	n := float64(b.N)
	b.ReportMetric(index.Seconds()/n, "s-index-build")
	b.ReportMetric(cold.Seconds()/n, "s-ready-cold")
	b.ReportMetric(warm.Seconds()*1000/n, "ms-ready-warm")
	b.ReportMetric(cold.Seconds()/index.Seconds(), "x-cold-vs-index-build")
}

// peers holds the squashfs export of the bench image, made once per benchmark.
type peers struct {
	bench benchImage
	sqfs  string
	cache string // ocimount's index cache, warm after the first mount
}

func setupPeers(b *testing.B) peers {
	b.Helper()
	bi := setupBench(b)
	requireFUSE(b)
	requireTools(b, "squashfuse", "mount", "umount", "tar", "ls", "sh")
	p := peers{bench: bi, sqfs: filepath.Join(b.TempDir(), "image.sqfs"), cache: b.TempDir()}
	r, err := run(context.Background(), ocirenderBin(b), "export", "-q", "--format", "squashfs", "-o", p.sqfs, "--ref", benchTag, bi.layout)
	if err != nil || r.code != 0 {
		b.Fatalf("ocirender export --format squashfs: %v %v", err, r)
	}
	return p
}

// mounts are the three views of one image, mounted afresh.
type mounts struct {
	ours, kernel, squashfuse string
	proc                     *mountProc
}

func (p peers) mount(b *testing.B) *mounts {
	b.Helper()
	m := &mounts{ours: b.TempDir(), kernel: b.TempDir(), squashfuse: b.TempDir()}
	m.proc = startMount(b, p.bench.layout, m.ours, "-q", "--cache-dir", p.cache, "--ref", benchTag)
	for _, c := range [][]string{
		{"mount", "-t", "squashfs", "-o", "loop,ro", p.sqfs, m.kernel},
		{"squashfuse", p.sqfs, m.squashfuse},
	} {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			b.Fatalf("%s: %v\n%s", strings.Join(c, " "), err, out)
		}
	}
	b.Cleanup(m.unmount)
	return m
}

func (m *mounts) unmount() {
	for _, dir := range []string{m.kernel, m.squashfuse} {
		if dir != "" && isMountedQuiet(dir) {
			exec.Command("umount", dir).Run()
		}
	}
	m.kernel, m.squashfuse = "", ""
}

func isMountedQuiet(dir string) bool {
	data, _ := os.ReadFile("/proc/self/mountinfo")
	return strings.Contains(string(data), " "+dir+" ")
}

// stop takes the three mounts down and returns ocimount's peak RSS in bytes.
func (m *mounts) stop(b *testing.B) int64 {
	rss := peakRSS(b, m.proc.cmd.Process.Pid)
	m.proc.stop(b)
	m.unmount()
	return rss
}

// peakRSS reads VmHWM of a running process.
func peakRSS(b *testing.B, pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				b.Fatalf("VmHWM %q: %v", v, err)
			}
			return kb << 10
		}
	}
	b.Fatalf("no VmHWM in /proc/%d/status", pid)
	return 0
}

func reportVs(b *testing.B, what string, ours, kernel, squashfuse time.Duration) {
	n := float64(b.N)
	b.ReportMetric(ours.Seconds()/n, "s-"+what)
	b.ReportMetric(kernel.Seconds()/n, "s-"+what+"-kernel")
	b.ReportMetric(squashfuse.Seconds()/n, "s-"+what+"-squashfuse")
	b.ReportMetric(ours.Seconds()/kernel.Seconds(), "x-vs-kernel")
	b.ReportMetric(ours.Seconds()/squashfuse.Seconds(), "x-vs-squashfuse")
}

// reportRSS reports the peak RSS of the mount process against its target: 100 MB + 400 bytes
// per entry + the span cache's budget.
func reportRSS(b *testing.B, rss int64, entries int) {
	b.ReportMetric(float64(rss)/(1<<20), "MB-peak-rss")
	base := int64(100<<20) + layer.DefaultCacheBudget
	b.ReportMetric(float64(rss-base)/float64(entries), "B-rss-above-base/entry")
}

// BenchmarkMountLsR: `ls -lR` of the whole tree. Targets: ≤ 1.5× the kernel's squashfs,
// ≤ 1.0× squashfuse.
func BenchmarkMountLsR(b *testing.B) {
	p := setupPeers(b)
	var ours, kernel, sqfuse time.Duration
	var rss int64
	for b.Loop() {
		m := p.mount(b)
		ours += measure(b, os.DevNull, "ls", "-lR", m.ours).wall
		kernel += measure(b, os.DevNull, "ls", "-lR", m.kernel).wall
		sqfuse += measure(b, os.DevNull, "ls", "-lR", m.squashfuse).wall
		rss = max(rss, m.stop(b))
	}
	reportVs(b, "ls-lR", ours, kernel, sqfuse)
	reportRSS(b, rss, p.bench.entries)
}

// BenchmarkMountReadAll: every file read once, by `tar -cf - . | cat > /dev/null` (GNU tar
// writing to /dev/null itself would skip reading the files). Target: ≤ 1.0× squashfuse.
// Also the peak RSS of ocimount after it (target: 100 MB + 400 B/entry + span cache).
func BenchmarkMountReadAll(b *testing.B) {
	p := setupPeers(b)
	requireGNUTar(b)
	var ours, kernel, sqfuse time.Duration
	var rss int64
	tarAll := func(dir string) time.Duration {
		return measure(b, "", "sh", "-c", `tar -C "$1" -cf - . | cat > /dev/null`, "sh", dir).wall
	}
	for b.Loop() {
		m := p.mount(b)
		ours += tarAll(m.ours)
		kernel += tarAll(m.kernel)
		sqfuse += tarAll(m.squashfuse)
		rss = max(rss, m.stop(b))
	}
	reportVs(b, "read-all", ours, kernel, sqfuse)
	reportRSS(b, rss, p.bench.entries)
}

// BenchmarkMountRandomRead: 4 KiB reads (open, pread, close) at random offsets of random
// files, picked in proportion to their size, on fresh mounts: p50 and p99 latency.
func BenchmarkMountRandomRead(b *testing.B) {
	p := setupPeers(b)
	const reads = 2000
	var ours, kernel, sqfuse []time.Duration
	for b.Loop() {
		m := p.mount(b)
		files, sizes := regularFiles(b, m.kernel)
		rng := rand.New(rand.NewPCG(uint64(len(ours)), 7))
		picks := make([][2]int64, reads) // file, offset
		for i := range picks {
			at := rng.Int64N(sizes[len(sizes)-1])
			f, _ := slices.BinarySearch(sizes, at+1)
			start := int64(0)
			if f > 0 {
				start = sizes[f-1]
			}
			picks[i] = [2]int64{int64(f), (at - start) &^ 4095}
		}
		ours = append(ours, randomReads(b, m.ours, files, picks)...)
		kernel = append(kernel, randomReads(b, m.kernel, files, picks)...)
		sqfuse = append(sqfuse, randomReads(b, m.squashfuse, files, picks)...)
		m.stop(b)
	}
	for _, s := range []struct {
		name string
		ds   []time.Duration
	}{{"", ours}, {"-kernel", kernel}, {"-squashfuse", sqfuse}} {
		b.ReportMetric(float64(percentile(s.ds, 50).Microseconds()), "us-p50"+s.name)
		b.ReportMetric(float64(percentile(s.ds, 99).Microseconds()), "us-p99"+s.name)
	}
}

// regularFiles lists the regular files below root (relative paths) with the running total
// of their sizes.
func regularFiles(b *testing.B, root string) ([]string, []int64) {
	var files []string
	var sizes []int64
	var total int64
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		fi, err := d.Info()
		if err != nil || fi.Size() == 0 {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		total += fi.Size()
		files = append(files, rel)
		sizes = append(sizes, total)
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return files, sizes
}

func randomReads(b *testing.B, root string, files []string, picks [][2]int64) []time.Duration {
	out := make([]time.Duration, 0, len(picks))
	buf := make([]byte, 4096)
	for _, pk := range picks {
		start := time.Now()
		f, err := os.Open(filepath.Join(root, files[pk[0]]))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := f.ReadAt(buf, pk[1]); err != nil && err != io.EOF {
			b.Fatalf("%s: %v", f.Name(), err)
		}
		f.Close()
		out = append(out, time.Since(start))
	}
	return out
}

// BenchmarkMountManyEntries: peak RSS of ocimount on the synthetic 300 000-entry image after
// `ls -lR` of the whole mount (every entry becomes a node), mounted cold (it builds the
// index: the merge's peak counts) and from a warm cache. Target: 100 MB + 400 B/entry + the
// span cache's budget.
func BenchmarkMountManyEntries(b *testing.B) {
	requireFUSE(b)
	const n = 300_000
	layout := manyEntries(b, n)
	var cold, warm int64
	var lsCold, lsWarm time.Duration
	for b.Loop() {
		cache := b.TempDir()
		m := startMount(b, layout, b.TempDir(), "-q", "--cache-dir", cache)
		lsCold += measure(b, os.DevNull, "ls", "-lR", m.mnt).wall
		cold = max(cold, peakRSS(b, m.cmd.Process.Pid))
		m.stop(b)
		m = startMount(b, layout, b.TempDir(), "-q", "--cache-dir", cache)
		lsWarm += measure(b, os.DevNull, "ls", "-lR", m.mnt).wall
		warm = max(warm, peakRSS(b, m.cmd.Process.Pid))
		m.stop(b)
	}
	nf := float64(b.N)
	b.ReportMetric(lsCold.Seconds()/nf, "s-ls-lR-cold")
	b.ReportMetric(lsWarm.Seconds()/nf, "s-ls-lR-warm")
	b.ReportMetric(float64(cold)/(1<<20), "MB-peak-rss-cold")
	b.ReportMetric(float64(warm)/(1<<20), "MB-peak-rss-warm")
	base := int64(100<<20) + layer.DefaultCacheBudget
	b.ReportMetric(float64(cold-base)/n, "B-rss-above-base/entry-cold")
	b.ReportMetric(float64(warm-base)/n, "B-rss-above-base/entry-warm")
}
