package layer

import (
	"bufio"
	"bytes"
	stdgzip "compress/gzip"
	"io"
	"os"
	"os/exec"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

const benchSize = 64 << 20

var benchStreams = sync.OnceValue(func() map[string][]byte {
	data := layerLike(benchSize, 41)
	var gz bytes.Buffer
	w, _ := gzip.NewWriterLevel(&gz, 6)
	w.Write(data)
	w.Close()
	var zs bytes.Buffer
	zw, _ := zstd.NewWriter(&zs, zstd.WithEncoderLevel(zstd.SpeedDefault))
	zw.Write(data)
	zw.Close()
	return map[string][]byte{"data": data, "gzip": gz.Bytes(), "zstd": zs.Bytes()}
})

// BenchmarkDecompress measures decompression of 64 MiB of layer-like data
// (MB/s of uncompressed output), with the klauspost and standard library
// gzip readers for comparison.
func BenchmarkDecompress(b *testing.B) {
	streams := benchStreams()
	decode := func(b *testing.B, blob []byte, open func(io.Reader) (io.Reader, error)) {
		b.SetBytes(benchSize)
		for b.Loop() {
			r, err := open(bytes.NewReader(blob))
			if err != nil {
				b.Fatal(err)
			}
			if n, err := io.Copy(io.Discard, r); n != benchSize || err != nil {
				b.Fatalf("decoded %d bytes, %v", n, err)
			}
			if c, ok := r.(io.Closer); ok {
				c.Close()
			}
		}
		b.ReportMetric(float64(benchSize)/float64(len(blob)), "ratio")
	}
	b.Run("gzip", func(b *testing.B) {
		decode(b, streams["gzip"], func(r io.Reader) (io.Reader, error) { return Decompress(r, Gzip, true, Options{}) })
	})
	b.Run("zstd", func(b *testing.B) {
		decode(b, streams["zstd"], func(r io.Reader) (io.Reader, error) { return Decompress(r, Zstd, true, Options{}) })
	})
	b.Run("gzip-klauspost", func(b *testing.B) {
		decode(b, streams["gzip"], func(r io.Reader) (io.Reader, error) { return gzip.NewReader(bufio.NewReaderSize(r, 256<<10)) })
	})
	b.Run("gzip-stdlib", func(b *testing.B) {
		decode(b, streams["gzip"], func(r io.Reader) (io.Reader, error) { return stdgzip.NewReader(bufio.NewReaderSize(r, 256<<10)) })
	})
}

// BenchmarkSpool measures the spool as the scan uses it: 64 MiB written in
// the pieces a tar reader produces (headers and file bodies), then read
// back in 1 MiB ReadAt calls.
func BenchmarkSpool(b *testing.B) {
	data := benchStreams()["data"]
	p := make([]byte, 1<<20)
	b.SetBytes(benchSize)
	for b.Loop() {
		s, err := NewSpool(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		for i, n := 0, 0; i < len(data); i += n {
			n = min(len(data)-i, 512+i%(64<<10))
			if _, err := s.Write(data[i : i+n]); err != nil {
				b.Fatal(err)
			}
		}
		for off := int64(0); off < benchSize; off += int64(len(p)) {
			if _, err := s.ReadAt(p, off); err != nil && err != io.EOF {
				b.Fatal(err)
			}
		}
		s.Close()
	}
}

// BenchmarkDecompressToSpool is the scan's data path: gzip into a spool.
func BenchmarkDecompressToSpool(b *testing.B) {
	blob := benchStreams()["gzip"]
	b.SetBytes(benchSize)
	for b.Loop() {
		s, err := NewSpool(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		rc, err := Decompress(bytes.NewReader(blob), Gzip, true, Options{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(s, rc); err != nil {
			b.Fatal(err)
		}
		s.Close()
	}
}

// TestCompareWithPigz times Decompress against pigz -dc on a real gzip
// file, alternating runs; set LAYER_COMPARE_GZIP to the file. Both write to
// /dev/null. Wall time is what a user sees; CPU time is steadier on a busy
// machine.
func TestCompareWithPigz(t *testing.T) {
	name := os.Getenv("LAYER_COMPARE_GZIP")
	if name == "" {
		t.Skip("set LAYER_COMPARE_GZIP to a gzip file to compare with pigz -dc")
	}
	if _, err := exec.LookPath("pigz"); err != nil {
		t.Skipf("pigz not installed: %v", err)
	}
	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	cpu := func() time.Duration {
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	var oursWall, oursCPU, pigzWall, pigzCPU []time.Duration
	var size int64
	for range 5 {
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		start, c0 := time.Now(), cpu()
		rc, err := Decompress(f, Gzip, true, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if size, err = io.Copy(devNull, rc); err != nil {
			t.Fatal(err)
		}
		oursWall, oursCPU = append(oursWall, time.Since(start)), append(oursCPU, cpu()-c0)
		f.Close()

		cmd := exec.Command("pigz", "-dc", name)
		cmd.Stdout = devNull
		start = time.Now()
		if err := cmd.Run(); err != nil {
			t.Fatal(err)
		}
		pigzWall = append(pigzWall, time.Since(start))
		pigzCPU = append(pigzCPU, cmd.ProcessState.UserTime()+cmd.ProcessState.SystemTime())
	}
	best := func(d []time.Duration) time.Duration { return slices.Min(d).Round(time.Millisecond) }
	t.Logf("%d MB out; best of 5 runs each", size/1e6)
	t.Logf("Decompress: wall %v (%.0f MB/s), CPU %v; all walls %v", best(oursWall), float64(size)/best(oursWall).Seconds()/1e6, best(oursCPU), oursWall)
	t.Logf("pigz -dc:   wall %v (%.0f MB/s), CPU %v; all walls %v", best(pigzWall), float64(size)/best(pigzWall).Seconds()/1e6, best(pigzCPU), pigzWall)
}
