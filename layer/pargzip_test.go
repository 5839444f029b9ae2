package layer

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"testing"
	"time"

	"github.com/klauspost/compress/flate"
)

// debianLayer is the large gzip layer of the Debian test image, if present.
const debianLayer = "/var/cache/ocirender-test/debian/blobs/sha256/8143f5dcfa0fd4cda6eab53e6143a311201d4b9937b2f0fc8eb189efdae0feea"

// parallelConfigs are the settings the tests run: real-size chunks and
// small ones, so that chunk boundaries fall everywhere.
var parallelConfigs = []parallelConfig{
	{workers: 2, chunkSize: parChunkSize, maxJobOut: parMaxJobOut},
	{workers: 3, chunkSize: 64 << 10, maxJobOut: 1 << 20},
	{workers: 2, chunkSize: 5000, maxJobOut: 200 << 10},
}

// decodeBoth decodes blob sequentially and in parallel with cfg, through
// Decompress's wrapping, and reports any difference in output or error.
// Where the stream is valid, the outputs must be equal. Where it is not,
// the errors must be equal and the parallel output a prefix of what the
// sequential inflater decoded before its error: both readers deliver
// decoded data in steps, and neither delivers the step that fails.
func decodeBoth(blob []byte, cfg parallelConfig, viaWriteTo bool) (want []byte, wantErr error, diff string) {
	return decodeBothLimited(blob, cfg, viaWriteTo, Options{})
}

// decodeBothLimited is decodeBoth with a MaxSize in opts. Past it, each
// reader says ErrTooLarge where it gets there first, so only the common
// output is compared.
func decodeBothLimited(blob []byte, cfg parallelConfig, viaWriteTo bool, opts Options) (want []byte, wantErr error, diff string) {
	read := func(par parallelConfig) ([]byte, error) {
		rc, err := decompress(bytes.NewReader(blob), Gzip, true, opts, par)
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		return readAllWith(rc, viaWriteTo)
	}
	// The sequential reader keeps back what it decoded since its last
	// delivery when it meets an error; the parallel one delivers all it
	// has checked. Both are the same decoding: compare with all of it.
	rc, err := decompress(bytes.NewReader(blob), Gzip, true, opts, parallelConfig{})
	if err == nil {
		want, wantErr = readAllWith(rc, viaWriteTo)
		if g := rc.(*reader).dec.(*gzipReader); wantErr != nil && g.err == wantErr || errors.Is(wantErr, g.err) {
			want = append(want, g.f.out[g.rp:g.f.op]...)
		}
		rc.Close()
	} else {
		wantErr = err
	}
	got, err := read(cfg)
	if errors.Is(err, ErrTooLarge) || errors.Is(wantErr, ErrTooLarge) {
		n := min(len(got), len(want))
		if !bytes.Equal(got[:n], want[:n]) {
			return want, wantErr, fmt.Sprintf("output differs at %d before the size limit", firstDiff(got, want))
		}
		return want, wantErr, ""
	}
	if wantErr != nil && len(got) <= len(want) && bytes.Equal(got, want[:len(got)]) {
		want = got // on damaged input, a prefix of the same decoding is right
	}
	if !bytes.Equal(got, want) {
		return want, wantErr, fmt.Sprintf("output differs: %d bytes, want %d, first difference at %d", len(got), len(want), firstDiff(got, want))
	}
	if !sameError(err, wantErr) {
		return want, wantErr, fmt.Sprintf("error %v, want %v", err, wantErr)
	}
	return want, wantErr, ""
}

// sameError reports whether two errors from Decompress say the same: the
// same message, the same kind.
func sameError(a, b error) bool {
	if (a == nil) != (b == nil) {
		return false
	}
	if a == nil {
		return true
	}
	var da, db *DecodeError
	return a.Error() == b.Error() && errors.As(a, &da) == errors.As(b, &db) &&
		errors.Is(a, io.ErrUnexpectedEOF) == errors.Is(b, io.ErrUnexpectedEOF)
}

func pigz(t testing.TB, data []byte, args ...string) []byte {
	return runTool(t, data, "pigz", append([]string{"-c"}, args...)...)
}

func TestParallelMatchesSequential(t *testing.T) {
	size, zeros := 3<<20, 40<<20
	if testing.Short() {
		size, zeros = 512<<10, 4<<20 // make test runs every package under -race -short
	}
	data := layerLike(size, 51)
	small := data[:300<<10]
	tests := []struct {
		name string
		blob func(t *testing.T) []byte
	}{
		{"gzip -1", func(t *testing.T) []byte { return runTool(t, data, "gzip", "-1", "-c") }},
		{"gzip -6", func(t *testing.T) []byte { return runTool(t, data, "gzip", "-6", "-c") }},
		{"gzip -9", func(t *testing.T) []byte { return runTool(t, data, "gzip", "-9", "-c") }},
		{"pigz", func(t *testing.T) []byte { return pigz(t, data) }},
		{"pigz -i", func(t *testing.T) []byte { return pigz(t, data, "-i") }},
		{"pigz -0", func(t *testing.T) []byte { return pigz(t, data, "-0") }},
		{"pigz --rsyncable", func(t *testing.T) []byte { return pigz(t, data, "--rsyncable") }},
		{"go flushes", func(t *testing.T) []byte { return stdGzipWith(t, data, 6, 20000) }},
		{"klauspost flushes", func(t *testing.T) []byte { return gzipWith(t, data, 6, 3000) }},
		{"huffman only", func(t *testing.T) []byte { return gzipWith(t, data, flate.HuffmanOnly, 0) }},
		{"stored", func(t *testing.T) []byte { return gzipWith(t, data, flate.NoCompression, 0) }},
		{"stored small blocks", func(t *testing.T) []byte { return stdGzipWith(t, small, 0, 777) }},
		{"incompressible", func(t *testing.T) []byte { return gzipWith(t, incompressible(2<<20), 6, 0) }},
		{"zeros", func(t *testing.T) []byte { return gzipWith(t, make([]byte, zeros), 9, 0) }},
		{"empty", func(t *testing.T) []byte { return gzipWith(t, nil, 6, 0) }},
		{"one byte", func(t *testing.T) []byte { return gzipWith(t, []byte{7}, 6, 0) }},
		{"tiny", func(t *testing.T) []byte { return runTool(t, []byte("hello, world\n"), "gzip", "-c") }},
		{"members", func(t *testing.T) []byte {
			q := len(data) / 3
			return cat(gzipWith(t, data[:q], 6, 0), pigz(t, data[q:2*q]), gzipWith(t, nil, 6, 0),
				runTool(t, data[2*q:], "gzip", "-1", "-c"))
		}},
		{"zero padding", func(t *testing.T) []byte { return cat(gzipWith(t, small, 6, 0), make([]byte, 10000)) }},
		{"garbage after", func(t *testing.T) []byte { return cat(gzipWith(t, small, 6, 0), []byte("junk")) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			blob := tt.blob(t)
			for i, cfg := range parallelConfigs {
				viaWriteTo := i%2 == 0
				if _, _, diff := decodeBoth(blob, cfg, viaWriteTo); diff != "" {
					t.Errorf("chunks of %d, %d workers, WriteTo=%v: %s", cfg.chunkSize, cfg.workers, viaWriteTo, diff)
				}
			}
		})
	}
}

func incompressible(n int) []byte {
	b := make([]byte, n)
	x := uint64(0x9e3779b97f4a7c15)
	for i := range b {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i] = byte(x)
	}
	return b
}

func TestParallelDebianLayer(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	blob, err := os.ReadFile(debianLayer)
	if err != nil {
		t.Skipf("Debian test layer missing: %v", err)
	}
	start := time.Now()
	want, wantErr, diff := decodeBoth(blob, parallelConfigs[0], true)
	if diff != "" {
		t.Fatal(diff)
	}
	if wantErr != nil {
		t.Fatalf("sequential decoding: %v", wantErr)
	}
	t.Logf("%d bytes in %v (both ways)", len(want), time.Since(start))
}

// TestParallelDamaged cuts and corrupts streams at many points: the
// parallel reader must return what the sequential one returns, byte for
// byte, and the same error.
func TestParallelDamaged(t *testing.T) {
	data := layerLike(400<<10, 52)
	streams := []struct {
		name string
		blob []byte
	}{
		{"gzip -6", gzipWith(t, data, 6, 0)},
		{"flushes", stdGzipWith(t, data, 6, 9000)},
		{"stored", gzipWith(t, data, flate.NoCompression, 0)},
		{"members", cat(gzipWith(t, data[:100<<10], 1, 0), gzipWith(t, data[100<<10:], 9, 0))},
	}
	cfg := parallelConfig{workers: 2, chunkSize: 3000, maxJobOut: 64 << 10}
	cuts := 40
	if testing.Short() {
		cuts = 6 // make test runs every package under -race -short
	}
	for _, s := range streams {
		n := len(s.blob)
		for i := 0; i < cuts; i++ {
			at := 1 + i*(n-1)/cuts
			if want, wantErr, diff := decodeBoth(s.blob[:at], cfg, i%2 == 0); diff != "" || wantErr == nil {
				t.Errorf("%s cut to %d of %d bytes: %s (sequential: %d bytes, %v)", s.name, at, n, diff, len(want), wantErr)
			}
			bad := bytes.Clone(s.blob)
			bad[at] ^= 1 << (i % 8)
			if _, _, diff := decodeBoth(bad, cfg, i%2 == 1); diff != "" {
				t.Errorf("%s with byte %d of %d flipped: %s", s.name, at, n, diff)
			}
		}
	}
}

// FuzzParallel compares the parallel reader with small chunks against
// the sequential one on arbitrary input: same output, same error, no
// panic and no hang.
func FuzzParallel(f *testing.F) {
	data := layerLike(20000, 53)
	f.Add(gzipWith(f, data, 6, 0), uint16(700))
	f.Add(gzipWith(f, data, 1, 3000), uint16(1000))
	f.Add(stdGzipWith(f, data, 0, 500), uint16(300))
	f.Add(gzipWith(f, data, flate.HuffmanOnly, 0), uint16(2000))
	f.Add(cat(gzipWith(f, data[:5000], 9, 0), gzipWith(f, data[5000:], 6, 0)), uint16(900))
	f.Add(gzipWith(f, make([]byte, 100000), 9, 0), uint16(64))
	f.Fuzz(func(t *testing.T, blob []byte, chunk uint16) {
		hang := time.AfterFunc(20*time.Second, func() { panic(fmt.Sprintf("parallel gzip hangs on %x (chunks of %d)", blob, chunk)) })
		defer hang.Stop()
		cfg := parallelConfig{workers: 2, chunkSize: int(chunk%4096) + 16, maxJobOut: 50000}
		if _, _, diff := decodeBothLimited(blob, cfg, chunk&1 == 0, Options{MaxSize: 4 << 20}); diff != "" {
			t.Fatal(diff)
		}
	})
}

// BenchmarkGzipParallel decodes 64 MiB of layer-like data (and the Debian
// test layer, when present) sequentially and with Parallel workers,
// reporting MB/s of output; compare the sub-benchmarks for the speed-up.
func BenchmarkGzipParallel(b *testing.B) {
	streams := []struct{ name, path string }{{"layerlike", ""}, {"debian", debianLayer}}
	for _, s := range streams {
		var blob []byte
		if s.path == "" {
			blob = benchStreams()["gzip"]
		} else {
			var err error
			if blob, err = os.ReadFile(s.path); err != nil {
				continue
			}
		}
		size, err := io.Copy(io.Discard, mustDecompress(b, blob, Options{}))
		if err != nil {
			b.Fatal(err)
		}
		for _, workers := range []int{0, 2, 3} {
			b.Run(fmt.Sprintf("%s/parallel=%d", s.name, workers), func(b *testing.B) {
				b.SetBytes(size)
				for b.Loop() {
					rc := mustDecompress(b, blob, Options{Parallel: workers})
					if n, err := io.Copy(io.Discard, rc); n != size || err != nil {
						b.Fatalf("decoded %d bytes, %v", n, err)
					}
					rc.Close()
				}
			})
		}
	}
}

func mustDecompress(b *testing.B, blob []byte, opts Options) io.ReadCloser {
	rc, err := Decompress(bytes.NewReader(blob), Gzip, true, opts)
	if err != nil {
		b.Fatal(err)
	}
	return rc
}
