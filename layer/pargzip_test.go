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
func decodeBoth(blob []byte, cfg parallelConfig, viaWriteTo bool) (want []byte, wantErr error, diff string) {
	read := func(par parallelConfig) ([]byte, error) {
		rc, err := decompress(bytes.NewReader(blob), Gzip, true, Options{}, par)
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		return readAllWith(rc, viaWriteTo)
	}
	want, wantErr = read(parallelConfig{})
	got, err := read(cfg)
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
	data := layerLike(3<<20, 51)
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
		{"zeros", func(t *testing.T) []byte { return gzipWith(t, make([]byte, 40<<20), 9, 0) }},
		{"empty", func(t *testing.T) []byte { return gzipWith(t, nil, 6, 0) }},
		{"one byte", func(t *testing.T) []byte { return gzipWith(t, []byte{7}, 6, 0) }},
		{"tiny", func(t *testing.T) []byte { return runTool(t, []byte("hello, world\n"), "gzip", "-c") }},
		{"members", func(t *testing.T) []byte {
			return cat(gzipWith(t, data[:1<<20], 6, 0), pigz(t, data[1<<20:3<<20]), gzipWith(t, nil, 6, 0),
				runTool(t, data[3<<20:], "gzip", "-1", "-c"))
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
