package layer

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// TestRawFrames checks that the raw frames a spill writes decode to their data, whether
// built in place in a chunk or appended.
func TestRawFrames(t *testing.T) {
	data := layerLike(spillFrameSize, 16)
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	for _, n := range []int{0, 1, 1000, zstdMaxBlockSize - 1, zstdMaxBlockSize, zstdMaxBlockSize + 1, 3*zstdMaxBlockSize + 5, spillFrameSize} {
		appended := appendRawFrame(nil, data[:n])
		if len(appended) != rawFrameLen(n) {
			t.Errorf("raw frame of %d bytes: %d bytes long, rawFrameLen says %d", n, len(appended), rawFrameLen(n))
		}
		buf := make([]byte, spillChunkSize)
		for k := 0; k < n; k += zstdMaxBlockSize {
			copy(buf[rawHeaderLen+k/zstdMaxBlockSize*rawBlockLen+3:], data[k:min(n, k+zstdMaxBlockSize)])
		}
		if inPlace := rawFrameAt(buf, n); !bytes.Equal(inPlace, appended) {
			t.Errorf("rawFrameAt(%d bytes) differs from appendRawFrame", n)
		}
		got, err := dec.DecodeAll(appended, nil)
		if err != nil || !bytes.Equal(got, data[:n]) {
			t.Errorf("raw frame of %d bytes decodes to %d bytes, %v", n, len(got), err)
		}
	}
}

// spillBenchDir holds the OCI layouts the test suites build (tests/internal/mkfixture);
// BenchmarkSpill uses the largest zstd layer found there, as real data.
const spillBenchDir = "/var/cache/ocirender-test"

// spillBench is the stream BenchmarkSpill decodes: a real or generated layer, as one zstd
// frame (as most zstd layers are) and as frames of 4 MiB.
type spillBench struct {
	name   string // where the data comes from
	tar    []byte
	single []byte
	frames []byte
	small  []byte // frames of 16 KiB, smaller than zstd:chunked's
}

var spillBenchData = sync.OnceValue(func() *spillBench {
	s := &spillBench{}
	s.tar, s.name = largestZstdLayer()
	if s.tar == nil {
		s.tar, s.name = layerLike(100<<20, 51), "layerLike(100 MiB)"
	}
	var b bytes.Buffer
	w, _ := zstd.NewWriter(&b, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
	w.Write(s.tar)
	w.Close()
	s.single = b.Bytes()
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault))
	for off := 0; off < len(s.tar); off += 4 << 20 {
		s.frames = enc.EncodeAll(s.tar[off:min(off+4<<20, len(s.tar))], s.frames)
	}
	for off := 0; off < len(s.tar); off += 16 << 10 {
		s.small = enc.EncodeAll(s.tar[off:min(off+16<<10, len(s.tar))], s.small)
	}
	return s
})

// largestZstdLayer returns the uncompressed stream of the largest zstd blob under
// spillBenchDir, and its name, or nil.
func largestZstdLayer() ([]byte, string) {
	blobs, _ := filepath.Glob(filepath.Join(spillBenchDir, "*", "blobs", "sha256", "*"))
	var best string
	var bestSize int64
	for _, name := range blobs {
		f, err := os.Open(name)
		if err != nil {
			continue
		}
		var magic [4]byte
		_, err = io.ReadFull(f, magic[:])
		fi, _ := f.Stat()
		f.Close()
		if err == nil && bytes.Equal(magic[:], zstdMagic) && fi.Size() > bestSize {
			best, bestSize = name, fi.Size()
		}
	}
	if best == "" {
		return nil, ""
	}
	blob, err := os.ReadFile(best)
	if err != nil {
		return nil, ""
	}
	tar, err := decompressAll(blob, Zstd, true, Options{})
	if err != nil {
		return nil, ""
	}
	return tar, fmt.Sprintf("%s (%d MB of zstd)", filepath.Base(best)[:12], len(blob)/1e6)
}

// BenchmarkSpill compares the scan's decoding of a zstd layer without a Recorder and with
// one, alternating the two in every iteration so that both see the same machine (other
// processes make the test machines' speed vary by 2x from one second to the next):
//
//   - single: the layer as one zstd frame, which gets a spill; x2: two such layers at
//     once, as a scan with two workers decodes them;
//   - frames: the layer in 4 MiB frames, which gets a frames map: nocopy without a spill
//     (the frame by frame decoding alone), copy with one (also the verbatim copy, then
//     its truncation); small-frames: likewise in 16 KiB frames, a decoder Reset each.
//
// Metrics: plain-MB/s and rec-MB/s, the decoding speeds; speed, their ratio; cpu, the
// ratio of process CPU time (what recording costs on a busy machine); spill/B, the spill's
// size per uncompressed byte; raw%, the share of spill frames stored uncompressed.
func BenchmarkSpill(b *testing.B) {
	s := spillBenchData()
	b.Logf("%s: %d MB uncompressed, %d MB as one frame, %d MB in 4 MiB frames", s.name, len(s.tar)/1e6, len(s.single)/1e6, len(s.frames)/1e6)
	for _, tc := range []struct {
		name     string
		blob     []byte
		spill    bool
		parallel int
	}{
		{"single", s.single, true, 1},
		{"single-x2", s.single, true, 2},
		{"frames-nocopy", s.frames, false, 1},
		{"frames-copy", s.frames, true, 1},
		{"small-frames-nocopy", s.small, false, 1},
		{"small-frames-copy", s.small, true, 1},
	} {
		b.Run(tc.name, func(b *testing.B) {
			dir := b.TempDir()
			var st spillStats
			var wall, cpu [2]int64
			for b.Loop() {
				for i, record := range []bool{false, true} {
					t0, c0 := time.Now(), cpuTime()
					var wg sync.WaitGroup
					for range tc.parallel {
						wg.Go(func() { decodeForBench(b, tc.blob, len(s.tar), record, tc.spill, dir, &st) })
					}
					wg.Wait()
					wall[i] += int64(time.Since(t0))
					cpu[i] += cpuTime() - c0
				}
			}
			total := float64(b.N*tc.parallel*len(s.tar)) / 1e6
			b.ReportMetric(total/time.Duration(wall[0]).Seconds(), "plain-MB/s")
			b.ReportMetric(total/time.Duration(wall[1]).Seconds(), "rec-MB/s")
			b.ReportMetric(float64(wall[0])/float64(wall[1]), "speed")
			b.ReportMetric(float64(cpu[1])/float64(cpu[0]), "cpu")
			if st.frames > 0 {
				b.ReportMetric(float64(st.spilled)/(total*1e6), "spill/B")
				b.ReportMetric(100*float64(st.raw)/float64(st.frames), "raw%")
			}
		})
	}
}

// spillStats adds up the spills of BenchmarkSpill.
type spillStats struct {
	mu                   sync.Mutex
	spilled, raw, frames int64
}

// decodeForBench decodes blob, with a Recorder when record is set, and with a spill in
// dir (unlinked, as a scan without a cache makes them) when spill is set.
func decodeForBench(b *testing.B, blob []byte, size int, record, spill bool, dir string, st *spillStats) {
	var opts Options
	var f *os.File
	if record {
		opts.Record = &Recorder{}
	}
	if record && spill {
		opts.Record.Spill = func() (*os.File, error) {
			var err error
			if f, err = os.CreateTemp(dir, "spill"); err == nil {
				os.Remove(f.Name())
			}
			return f, err
		}
	}
	rc, err := Decompress(bytes.NewReader(blob), Zstd, true, opts)
	if err != nil {
		b.Error(err)
		return
	}
	if n, err := io.Copy(io.Discard, rc); err != nil || n != int64(size) {
		b.Errorf("decoded %d bytes, %v", n, err)
	}
	rc.Close()
	if f != nil {
		defer f.Close()
	}
	if !record {
		return
	}
	m, err := opts.Record.Map()
	if err != nil {
		b.Error(err)
		return
	}
	if m.Access == AccessSpill {
		fi, _ := f.Stat()
		st.mu.Lock()
		st.spilled += fi.Size()
		st.frames += int64(len(m.Points))
		st.raw += int64(countRawFrames(f, m))
		st.mu.Unlock()
	}
}

// cpuTime returns the CPU time the process used so far, in nanoseconds.
func cpuTime() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// countRawFrames counts the frames of a spill stored raw: their header is the one
// appendRawFrame writes.
func countRawFrames(f *os.File, m *Map) int {
	n := 0
	for _, p := range m.Points {
		var h [5]byte
		if _, err := f.ReadAt(h[:], p.In); err == nil && h[4] == 2<<6|1<<5 {
			n++
		}
	}
	return n
}

// BenchmarkSpillRead measures a random read from a map: resuming at the frame before a
// random offset and decoding up to it, for spill frames of a few sizes and for a zstd
// frame at the limit of AccessZstdFrames, compressed at the spill's level or stored raw.
func BenchmarkSpillRead(b *testing.B) {
	data := spillBenchData().tar
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(spillLevel), zstd.WithEncoderConcurrency(1))
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		size int
		raw  bool
	}{
		{"256KiB", 256 << 10, false},
		{"1MiB", 1 << 20, false},
		{"1MiB-raw", 1 << 20, true},
		{"4MiB", 4 << 20, false},
		{"8MiB", 8 << 20, false},
	} {
		var blob []byte
		var points []Point
		for off := 0; off < len(data); off += tc.size {
			points = append(points, Point{Out: int64(off), In: int64(len(blob))})
			if tc.raw {
				blob = appendRawFrame(blob, data[off:min(off+tc.size, len(data))])
			} else {
				blob = enc.EncodeAll(data[off:min(off+tc.size, len(data))], blob)
			}
		}
		b.Run(tc.name, func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 2))
			buf := make([]byte, 4096)
			for b.Loop() {
				off := rng.Int64N(int64(len(data) - len(buf)))
				p := points[off/int64(tc.size)]
				rc, err := openZstdAt(bytes.NewReader(blob), int64(len(blob)), p)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.CopyN(io.Discard, rc, off-p.Out); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(rc, buf); err != nil {
					b.Fatal(err)
				}
				rc.Close()
			}
			b.ReportMetric(float64(len(blob))/float64(len(data)), "size/B")
		})
	}
}
