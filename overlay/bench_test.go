package overlay_test

import (
	"archive/tar"
	"bytes"
	"fmt"
	"runtime"
	"testing"

	"github.com/ocirender/ocirender/overlay"
)

// benchLayer is a tar of n empty files spread over n/100 directories, with names as long as
// a typical distribution's.
func benchLayer(n int) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for d := 0; d < n/100; d++ {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: fmt.Sprintf("usr/share/pkg%05d/", d), Mode: 0o755})
		for f := 0; f < 100; f++ {
			tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: fmt.Sprintf("usr/share/pkg%05d/file-%03d.txt", d, f), Mode: 0o644})
		}
	}
	tw.Close()
	return buf.Bytes()
}

// BenchmarkMerge reads and merges a 200 000-entry layer and reports the time per entry, the
// heap the merge holds at its peak and the size of the frozen index, per entry.
func BenchmarkMerge(b *testing.B) {
	const n = 200_000
	layer := benchLayer(n)
	var peak, indexBytes uint64
	for b.Loop() {
		var before, during runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		ch, err := overlay.ReadChanges(bytes.NewReader(layer), overlay.ScanOptions{})
		if err != nil {
			b.Fatal(err)
		}
		m := overlay.New(overlay.Options{})
		if err := m.Apply(ch); err != nil {
			b.Fatal(err)
		}
		ix, err := m.Index()
		if err != nil {
			b.Fatal(err)
		}
		runtime.ReadMemStats(&during)
		peak = max(peak, during.HeapInuse-before.HeapInuse)
		indexBytes = uint64(ix.Bytes())
		runtime.KeepAlive(m)
		runtime.KeepAlive(ch)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/entry")
	b.ReportMetric(float64(peak)/n, "B-heap/entry")
	b.ReportMetric(float64(indexBytes)/n, "B-index/entry")
}
