package layer

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"sync"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// readerStream is test data shaped like a layer: compressible text with runs of random
// bytes, so that every encoding produces blocks of several kinds.
func readerStream(n int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 1))
	var b bytes.Buffer
	for b.Len() < n {
		switch rng.IntN(3) {
		case 0:
			fmt.Fprintf(&b, "line %d of a text file with words %x\n", b.Len(), rng.Uint32()%64)
		case 1:
			r := make([]byte, rng.IntN(4096))
			for i := range r {
				r[i] = byte(rng.Uint32())
			}
			b.Write(r)
		default:
			b.Write(make([]byte, rng.IntN(8192)))
		}
	}
	return b.Bytes()[:n]
}

// mapped records the map of blob (an encoding of want) through Decompress, and returns the
// source a Reader reads it from.
func mapped(t testing.TB, blob, want []byte, interval int64) (io.ReaderAt, int64, *Map) {
	t.Helper()
	var spill *os.File
	rec := &Recorder{Interval: interval, Spill: func() (*os.File, error) {
		f, err := os.CreateTemp(t.TempDir(), "spill")
		spill = f
		return f, err
	}}
	d, err := Decompress(bytes.NewReader(blob), Detect(blob), true, Options{Record: rec})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(d)
	d.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("decoded stream differs")
	}
	m, err := rec.Map()
	if err != nil {
		t.Fatal(err)
	}
	if m.Size != int64(len(want)) {
		t.Fatalf("map size %d, want %d", m.Size, len(want))
	}
	if m.Access == AccessSpill {
		t.Cleanup(func() { spill.Close() })
		fi, err := spill.Stat()
		if err != nil {
			t.Fatal(err)
		}
		return spill, fi.Size(), m
	}
	return bytes.NewReader(blob), int64(len(blob)), m
}

func readerEncodings(t testing.TB, want []byte) map[string][]byte {
	var gz bytes.Buffer
	w, _ := gzip.NewWriterLevel(&gz, 6)
	w.Write(want)
	w.Close()
	var frames []byte
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))
	for off := 0; off < len(want); off += 300 << 10 {
		frames = enc.EncodeAll(want[off:min(off+300<<10, len(want))], frames)
	}
	single := enc.EncodeAll(want, nil)
	return map[string][]byte{"gzip": gz.Bytes(), "zstd-frames": frames, "zstd-single": single}
}

func TestReaderRandomReads(t *testing.T) {
	size := 6 << 20
	if testing.Short() {
		size = 2 << 20
	}
	want := readerStream(size, 1)
	for name, blob := range readerEncodings(t, want) {
		t.Run(name, func(t *testing.T) {
			src, srcSize, m := mapped(t, blob, want, 256<<10)
			cache := NewReadCache(1<<20, 3)
			r, err := NewReader(src, srcSize, m, cache)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			rng := rand.New(rand.NewPCG(2, 2))
			reads := 2000
			if testing.Short() {
				reads = 300
			}
			for i := range reads {
				var off, n int
				switch i % 4 {
				case 0: // small, anywhere
					off, n = rng.IntN(len(want)), 1+rng.IntN(8192)
				case 1: // across a span boundary
					off, n = max(0, (1+rng.IntN(len(want)/SpanSize))*SpanSize-100), 200
				case 2: // large
					off, n = rng.IntN(len(want)), rng.IntN(3*SpanSize)
				default: // sequential after the previous read
					off, n = (i*7919)%len(want), 4096
				}
				p := make([]byte, n)
				k, err := r.ReadAt(p, int64(off))
				end := min(off+n, len(want))
				if k != end-off {
					t.Fatalf("ReadAt(%d, %d) = %d, %v; want %d bytes", off, n, k, err, end-off)
				}
				if off+n > len(want) && err != io.EOF || off+n <= len(want) && err != nil {
					t.Fatalf("ReadAt(%d, %d) error %v", off, n, err)
				}
				if !bytes.Equal(p[:k], want[off:end]) {
					t.Fatalf("ReadAt(%d, %d): wrong bytes", off, n)
				}
			}
			if k, err := r.ReadAt(make([]byte, 1), int64(len(want))); k != 0 || err != io.EOF {
				t.Fatalf("read at the end = %d, %v", k, err)
			}
			t.Logf("hits %d misses %d resumes %d", cache.Hits.Load(), cache.Misses.Load(), cache.Resumes.Load())
		})
	}
}

// A sequential reader of small pieces resumes at a checkpoint once and then continues.
func TestReaderSequentialContinues(t *testing.T) {
	want := readerStream(3<<20, 3)
	for name, blob := range readerEncodings(t, want) {
		t.Run(name, func(t *testing.T) {
			src, srcSize, m := mapped(t, blob, want, 256<<10)
			cache := NewReadCache(2*SpanSize, 1) // room for the span being read only
			r, _ := NewReader(src, srcSize, m, cache)
			defer r.Close()
			var got bytes.Buffer
			if _, err := io.Copy(&got, io.NewSectionReader(r, 0, r.Size())); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Bytes(), want) {
				t.Fatal("sequential read differs")
			}
			if n := cache.Resumes.Load(); n != 1 {
				t.Errorf("%d resumes for one sequential pass, want 1", n)
			}
		})
	}
}

func TestReaderConcurrent(t *testing.T) {
	want := readerStream(3<<20, 4)
	for name, blob := range readerEncodings(t, want) {
		t.Run(name, func(t *testing.T) {
			src, srcSize, m := mapped(t, blob, want, 128<<10)
			cache := NewReadCache(512<<10, 4)
			r, _ := NewReader(src, srcSize, m, cache)
			defer r.Close()
			rounds := 150
			if testing.Short() {
				rounds = 30
			}
			var wg sync.WaitGroup
			errs := make(chan error, 8)
			for g := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					rng := rand.New(rand.NewPCG(uint64(g), 9))
					for range rounds {
						off, n := rng.IntN(len(want)), 1+rng.IntN(64<<10)
						p := make([]byte, n)
						k, _ := r.ReadAt(p, int64(off))
						if !bytes.Equal(p[:k], want[off:min(off+n, len(want))]) {
							errs <- fmt.Errorf("ReadAt(%d, %d): wrong bytes", off, n)
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
		})
	}
}

// A map whose points lie (a cache file gone bad in a way its checksum missed) gives errors,
// never a panic or endless decoding.
func TestReaderBadMap(t *testing.T) {
	want := readerStream(1<<20, 5)
	for name, blob := range readerEncodings(t, want) {
		t.Run(name, func(t *testing.T) {
			src, srcSize, m := mapped(t, blob, want, 64<<10)
			bad := *m
			bad.Size = m.Size + 1000 // the stream ends before the map says
			r, _ := NewReader(src, srcSize, &bad, nil)
			if _, err := r.ReadAt(make([]byte, 10), m.Size+10); err == nil {
				t.Fatal("read past the real end succeeded")
			}
			bad = *m
			bad.Points = append([]Point(nil), m.Points...)
			for i := range bad.Points {
				bad.Points[i].In += 3
			}
			r, _ = NewReader(src, srcSize, &bad, nil)
			p := make([]byte, 4096)
			for off := int64(0); off < m.Size; off += 100 << 10 {
				if _, err := r.ReadAt(p, off); err == nil && !bytes.Equal(p, want[off:min(off+4096, int64(len(want)))]) {
					// Garbage without an error is possible for a raw DEFLATE resume at a wrong
					// bit; it must at least not crash. Only zstd frames must fail.
					if m.Access != AccessGzip {
						t.Fatalf("wrong bytes at %d without an error", off)
					}
				}
			}
		})
	}
}
