package layer

import (
	"bytes"
	stdgzip "compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
	"testing"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// Compressors written in Go, for streams the command line tools do not make.

func gzipWith(t testing.TB, data []byte, level, flushEvery int) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := gzip.NewWriterLevel(&b, level)
	if err != nil {
		t.Fatal(err)
	}
	writeFlushing(t, w, data, flushEvery)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func stdGzipWith(t testing.TB, data []byte, level, flushEvery int) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := stdgzip.NewWriterLevel(&b, level)
	if err != nil {
		t.Fatal(err)
	}
	w.Name, w.Comment, w.Extra = "layer.tar", "a comment", []byte("extra field")
	writeFlushing(t, w, data, flushEvery)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// writeFlushing writes data in irregular pieces, calling Flush (a sync
// flush: an empty stored block) after roughly every flushEvery bytes.
func writeFlushing(t testing.TB, w interface {
	io.Writer
	Flush() error
}, data []byte, flushEvery int) {
	t.Helper()
	for i := 0; len(data) > 0; i++ {
		n := min(len(data), flushEvery+i*7919%max(flushEvery/3, 1))
		if flushEvery == 0 {
			n = len(data)
		}
		if _, err := w.Write(data[:n]); err != nil {
			t.Fatal(err)
		}
		data = data[n:]
		if flushEvery > 0 {
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// gzipAllHeaderFields builds a member with every optional header field,
// including the header CRC that no common writer sets.
func gzipAllHeaderFields(t testing.TB, data []byte) []byte {
	t.Helper()
	hdr := []byte{0x1f, 0x8b, 8, 0x02 | 0x04 | 0x08 | 0x10, 1, 2, 3, 4, 0, 3}
	hdr = append(hdr, 5, 0, 'x', 'y', 'z', 'z', 'y')
	hdr = append(hdr, "name.tar\x00"...)
	hdr = append(hdr, "comment\x00"...)
	hdr = binary.LittleEndian.AppendUint16(hdr, uint16(crc32.ChecksumIEEE(hdr)))
	var b bytes.Buffer
	b.Write(hdr)
	w, _ := flate.NewWriter(&b, 5)
	w.Write(data)
	w.Close()
	b.Write(binary.LittleEndian.AppendUint32(nil, crc32.ChecksumIEEE(data)))
	b.Write(binary.LittleEndian.AppendUint32(nil, uint32(len(data))))
	return b.Bytes()
}

func zstdFrames(t testing.TB, data []byte, frameSize int) []byte {
	t.Helper()
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	if len(data) == 0 {
		return enc.EncodeAll(nil, nil)
	}
	var out []byte
	for len(data) > 0 {
		n := min(len(data), frameSize)
		out = enc.EncodeAll(data[:n], out)
		data = data[n:]
	}
	return out
}

func zstdSkippableFrame(payload string) []byte {
	f := binary.LittleEndian.AppendUint32(nil, 0x184D2A53)
	f = binary.LittleEndian.AppendUint32(f, uint32(len(payload)))
	return append(f, payload...)
}

func xzGo(t testing.TB, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := xz.NewWriter(&b)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestDecompressRoundTrip(t *testing.T) {
	data := layerLike(1<<20+600000, 1) // more than the inflater's output buffer
	first, second := data[:1<<20+12345], data[1<<20+12345:]
	tests := []struct {
		name string
		c    Compression
		make func(t *testing.T) []byte
	}{
		{"uncompressed", Uncompressed, func(t *testing.T) []byte { return data }},
		{"gzip -6", Gzip, func(t *testing.T) []byte { return runTool(t, data, "gzip", "-6", "-c") }},
		{"gzip -1", Gzip, func(t *testing.T) []byte { return runTool(t, data, "gzip", "-1", "-c") }},
		{"gzip -9 file", Gzip, func(t *testing.T) []byte { return runToolOnFile(t, data, "gzip", "-9", "-c") }},
		{"gzip concatenated", Gzip, func(t *testing.T) []byte {
			return cat(runTool(t, first, "gzip", "-c"), runTool(t, second, "gzip", "-c"))
		}},
		{"pigz", Gzip, func(t *testing.T) []byte { return runTool(t, data, "pigz", "-c") }},
		{"pigz 32K blocks", Gzip, func(t *testing.T) []byte { return runTool(t, data, "pigz", "-c", "-p", "2", "-b", "32") }},
		{"pigz -i", Gzip, func(t *testing.T) []byte { return runTool(t, data, "pigz", "-c", "-i", "-b", "64") }},
		{"pigz -0", Gzip, func(t *testing.T) []byte { return runTool(t, data, "pigz", "-c", "-0") }},
		{"pigz multi-member", Gzip, func(t *testing.T) []byte {
			return cat(runTool(t, first, "pigz", "-c"), runTool(t, second[:100], "pigz", "-c", "-i"),
				runTool(t, nil, "pigz", "-c"), runTool(t, second[100:], "pigz", "-c", "-9"))
		}},
		{"go gzip flushes", Gzip, func(t *testing.T) []byte { return gzipWith(t, data, 6, 40000) }},
		{"go gzip tiny flushes", Gzip, func(t *testing.T) []byte { return gzipWith(t, data[:200000], 6, 100) }},
		{"go gzip huffman only", Gzip, func(t *testing.T) []byte { return gzipWith(t, data, gzip.HuffmanOnly, 0) }},
		{"go gzip stored", Gzip, func(t *testing.T) []byte { return gzipWith(t, data, gzip.NoCompression, 100000) }},
		{"go gzip level 1", Gzip, func(t *testing.T) []byte { return gzipWith(t, data, 1, 0) }},
		{"go gzip level 9", Gzip, func(t *testing.T) []byte { return gzipWith(t, data, 9, 0) }},
		{"stdlib gzip flushes", Gzip, func(t *testing.T) []byte { return stdGzipWith(t, data, 6, 70000) }},
		{"stdlib gzip best speed", Gzip, func(t *testing.T) []byte { return stdGzipWith(t, data, 1, 0) }},
		{"gzip header fields", Gzip, func(t *testing.T) []byte { return gzipAllHeaderFields(t, data) }},
		{"zstd", Zstd, func(t *testing.T) []byte { return runTool(t, data, "zstd", "-c", "-q") }},
		{"zstd -19", Zstd, func(t *testing.T) []byte { return runTool(t, data, "zstd", "-c", "-q", "-19") }},
		{"zstd file", Zstd, func(t *testing.T) []byte { return runToolOnFile(t, data, "zstd", "-c", "-q") }},
		{"zstd --long", Zstd, func(t *testing.T) []byte { return runTool(t, data, "zstd", "-c", "-q", "--long=27") }},
		{"zstd -T2", Zstd, func(t *testing.T) []byte { return runTool(t, data, "zstd", "-c", "-q", "-T2", "-B256KiB") }},
		{"zstd no checksum", Zstd, func(t *testing.T) []byte { return runTool(t, data, "zstd", "-c", "-q", "--no-check") }},
		{"zstd concatenated", Zstd, func(t *testing.T) []byte {
			return cat(runTool(t, first, "zstd", "-c", "-q"), runTool(t, second, "zstd", "-c", "-q"))
		}},
		{"go zstd", Zstd, func(t *testing.T) []byte { return zstdFrames(t, data, len(data)) }},
		{"go zstd frames", Zstd, func(t *testing.T) []byte { return zstdFrames(t, data, 300000) }},
		{"go zstd skippable", Zstd, func(t *testing.T) []byte {
			return cat(zstdSkippableFrame("seekable index?"), zstdFrames(t, first, 1<<20),
				zstdSkippableFrame(""), zstdFrames(t, second, 1<<20))
		}},
		{"xz", Xz, func(t *testing.T) []byte { return runTool(t, data, "xz", "-c") }},
		{"xz blocks", Xz, func(t *testing.T) []byte { return runTool(t, data, "xz", "-c", "-T2", "--block-size=300KiB") }},
		{"xz -9", Xz, func(t *testing.T) []byte { return runTool(t, data, "xz", "-c", "-9") }},
		{"xz concatenated", Xz, func(t *testing.T) []byte {
			return cat(runTool(t, first, "xz", "-c"), runTool(t, second, "xz", "-c"))
		}},
		{"go xz", Xz, func(t *testing.T) []byte { return xzGo(t, data) }},
		{"bzip2", Bzip2, func(t *testing.T) []byte { return runTool(t, data, "bzip2", "-c") }},
		{"bzip2 -1", Bzip2, func(t *testing.T) []byte { return runTool(t, data, "bzip2", "-c", "-1") }},
		{"bzip2 concatenated", Bzip2, func(t *testing.T) []byte {
			return cat(runTool(t, first, "bzip2", "-c"), runTool(t, second, "bzip2", "-c"))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			blob := tt.make(t)
			want := data
			if tt.name == "go gzip tiny flushes" {
				want = data[:200000]
			}
			if got := Detect(blob); got != tt.c {
				t.Errorf("Detect = %v, want %v", got, tt.c)
			}
			for _, mode := range []struct{ known, viaWriteTo bool }{{true, true}, {true, false}, {false, true}} {
				known, viaWriteTo := mode.known, mode.viaWriteTo
				rc, err := Decompress(bytes.NewReader(blob), tt.c, known, Options{})
				if err != nil {
					t.Fatalf("Decompress(known=%v) = %v", known, err)
				}
				got, err := readAllWith(rc, viaWriteTo)
				if err != nil {
					t.Fatalf("reading (known=%v, WriteTo=%v) = %v", known, viaWriteTo, err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("reading (known=%v, WriteTo=%v) = %d bytes, want %d, first difference at %d",
						known, viaWriteTo, len(got), len(want), firstDiff(got, want))
				}
				if err := rc.Close(); err != nil {
					t.Errorf("Close = %v", err)
				}
			}
		})
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// decompressAll runs Decompress and reads everything, returning the first error.
func decompressAll(blob []byte, c Compression, known bool, opts Options) ([]byte, error) {
	rc, err := Decompress(bytes.NewReader(blob), c, known, opts)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func TestDecompressEmpty(t *testing.T) {
	tests := []struct {
		name    string
		blob    []byte
		c       Compression
		known   bool
		wantErr bool
	}{
		{"nothing, unknown", nil, Uncompressed, false, false},
		{"nothing, uncompressed", nil, Uncompressed, true, false},
		{"nothing, declared gzip", nil, Gzip, true, true},
		{"nothing, declared zstd", nil, Zstd, true, true},
		{"empty gzip", gzipWith(t, nil, 6, 0), Gzip, true, false},
		{"empty zstd", zstdFrames(t, []byte{}, 1), Zstd, true, false},
		{"only a skippable frame", zstdSkippableFrame("x"), Zstd, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decompressAll(tt.blob, tt.c, tt.known, Options{})
			if (err != nil) != tt.wantErr {
				t.Fatalf("Decompress(%v, %v) error = %v, want error %v", tt.c, tt.known, err, tt.wantErr)
			}
			if len(got) != 0 {
				t.Errorf("Decompress = %d bytes, want none", len(got))
			}
		})
	}
}

func TestDecompressTruncated(t *testing.T) {
	size := 1 << 20
	if testing.Short() {
		size = 128 << 10 // make test runs every package under -race -short
	}
	data := layerLike(size, 2)
	streams := []struct {
		name string
		c    Compression
		blob []byte
	}{
		{"gzip", Gzip, gzipWith(t, data, 6, 0)},
		{"gzip stored", Gzip, gzipWith(t, data, 0, 0)},
		{"gzip flushes", Gzip, gzipWith(t, data, 6, 30000)},
		{"zstd", Zstd, zstdFrames(t, data, len(data))},
		{"zstd frames", Zstd, zstdFrames(t, data, 100000)},
		{"xz", Xz, xzGo(t, data)},
		{"bzip2", Bzip2, runTool(t, data, "bzip2", "-c")},
	}
	for _, s := range streams {
		n := len(s.blob)
		for _, cut := range []int{1, 3, 6, 10, 20, 100, n / 3, n / 2, n - 100, n - 9, n - 8, n - 5, n - 4, n - 1} {
			if cut <= 0 || cut >= n {
				continue
			}
			if s.name == "zstd frames" && isZstdFrameBoundary(s.blob, cut) {
				continue // a valid, shorter stream
			}
			for _, viaWriteTo := range []bool{true, false} {
				rc, err := Decompress(bytes.NewReader(s.blob[:cut]), s.c, true, Options{})
				if err == nil {
					_, err = readAllWith(rc, viaWriteTo)
				}
				if err == nil {
					t.Errorf("%s cut to %d of %d bytes (WriteTo=%v): no error", s.name, cut, n, viaWriteTo)
					continue
				}
				if s.c == Gzip && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Errorf("%s cut to %d of %d bytes: error %q does not say truncated", s.name, cut, n, err)
				}
				var de *DecodeError
				if !errors.As(err, &de) {
					t.Errorf("%s cut to %d: error %q (%T) is not a *DecodeError", s.name, cut, err, err)
				}
			}
		}
	}
	// The brief's example of a readable message.
	_, err := decompressAll(streams[0].blob[:1000], Gzip, true, Options{})
	if want := "layer: gzip stream truncated: unexpected EOF"; err == nil || err.Error() != want {
		t.Errorf("truncated gzip error = %v, want %q", err, want)
	}
}

// isZstdFrameBoundary reports whether a zstd frame starts at blob[off:].
func isZstdFrameBoundary(blob []byte, off int) bool {
	return bytes.HasPrefix(blob[off:], zstdMagic)
}

func TestDecompressTrailingData(t *testing.T) {
	data := layerLike(100000, 3)
	gz := gzipWith(t, data, 6, 0)
	tests := []struct {
		name    string
		blob    []byte
		wantErr string
	}{
		{"zero padding", cat(gz, make([]byte, 10000)), ""},
		{"one zero", cat(gz, []byte{0}), ""},
		{"garbage", cat(gz, []byte("garbage")), "unexpected data after the last gzip member"},
		{"zeros then garbage", cat(gz, make([]byte, 100), []byte{1}), "unexpected data after the last gzip member"},
		{"half a magic", cat(gz, []byte{0x1f}), "truncated"},
		{"a bad member", cat(gz, []byte{0x1f, 0x8b, 9, 0, 0, 0, 0, 0, 0, 0, 0}), "unsupported gzip compression method"},
		{"a header only", cat(gz, gz[:10]), "truncated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, viaWriteTo := range []bool{true, false} {
				rc, err := Decompress(bytes.NewReader(tt.blob), Gzip, true, Options{})
				if err != nil {
					t.Fatal(err)
				}
				got, err := readAllWith(rc, viaWriteTo)
				if tt.wantErr == "" {
					if err != nil || !bytes.Equal(got, data) {
						t.Errorf("reading = %d bytes, %v; want %d bytes, no error", len(got), err, len(data))
					}
					continue
				}
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("reading error = %v, want one containing %q", err, tt.wantErr)
				}
			}
		})
	}
}

func TestDecompressCorrupt(t *testing.T) {
	data := layerLike(200000, 4)
	gz := gzipWith(t, data, 6, 0)
	flip := func(b []byte, i int) []byte {
		c := bytes.Clone(b)
		c[i] ^= 0x55
		return c
	}
	tests := []struct {
		name    string
		blob    []byte
		c       Compression
		wantErr string
	}{
		{"gzip crc", flip(gz, len(gz)-6), Gzip, "layer: gzip stream corrupt: gzip CRC-32 mismatch"},
		{"gzip length", flip(gz, len(gz)-2), Gzip, "layer: gzip stream corrupt: gzip length mismatch"},
		{"gzip reserved flag", func() []byte { c := bytes.Clone(gz); c[3] |= 0x80; return c }(), Gzip, "reserved gzip header flags"},
		{"gzip data", flip(gz, len(gz)/2), Gzip, "layer: gzip stream corrupt"},
		{"zstd data", flip(zstdFrames(t, data, len(data)), 5000), Zstd, "layer: zstd stream corrupt"},
		{"xz data", flip(xzGo(t, data), 5000), Xz, "layer: xz stream corrupt"},
		{"bzip2 data", flip(runTool(t, data, "bzip2", "-c"), 5000), Bzip2, "layer: bzip2 stream corrupt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decompressAll(tt.blob, tt.c, true, Options{})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Decompress error = %v, want one containing %q", err, tt.wantErr)
			}
			var de *DecodeError
			if err != nil && !errors.As(err, &de) {
				t.Errorf("error %v (%T) is not a *DecodeError", err, err)
			}
		})
	}
}

// tarHeader returns a valid 512-byte tar header block.
func tarHeader(name string) []byte {
	var h [512]byte
	copy(h[:], name)
	copy(h[100:], "0000644\x000000000\x000000000\x0000000000000\x0000000000000\x00        0")
	copy(h[257:], "ustar\x0000")
	var sum int
	for _, b := range h {
		sum += int(b)
	}
	copy(h[148:], fmt.Sprintf("%06o\x00 ", sum))
	return h[:]
}

func TestDecompressMislabelled(t *testing.T) {
	data := cat(tarHeader("BZh9-not-bzip2"), layerLike(100000, 5))
	tests := []struct {
		name     string
		blob     []byte
		declared Compression
		known    bool
		wantErr  bool
	}{
		{"tar+gzip that is zstd", zstdFrames(t, data, 1<<20), Gzip, true, false},
		{"tar+zstd that is gzip", gzipWith(t, data, 6, 0), Zstd, true, false},
		{"tar that is gzip", gzipWith(t, data, 6, 0), Uncompressed, true, false},
		{"tar that is xz", xzGo(t, data), Uncompressed, true, false},
		{"tar+gzip that is a plain tar", data, Gzip, true, false},
		{"tar+zstd that is a plain tar", data, Zstd, true, false},
		{"tar+gzip that is an empty tar", make([]byte, 1024), Gzip, true, false},
		{"tar+gzip that is junk", []byte(strings.Repeat("not a layer ", 100)), Gzip, true, true},
		{"tar+gzip that is short junk", []byte("PK\x03\x04"), Gzip, true, true},
		{"unknown type, plain tar", data, Uncompressed, false, false},
		{"unknown type, gzip", gzipWith(t, data, 6, 0), Uncompressed, false, false},
		{"unknown type, bzip2", runTool(t, data, "bzip2", "-c"), Uncompressed, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decompressAll(tt.blob, tt.declared, tt.known, Options{})
			if tt.wantErr {
				if err == nil {
					t.Fatalf("Decompress(%v, %v) = %d bytes, want an error", tt.declared, tt.known, len(got))
				}
				return
			}
			if err != nil {
				t.Fatalf("Decompress(%v, %v) = %v", tt.declared, tt.known, err)
			}
			want := data
			if len(tt.blob) == 1024 {
				want = tt.blob
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("Decompress(%v, %v) = %d bytes, want %d", tt.declared, tt.known, len(got), len(want))
			}
		})
	}
}

func TestDecompressMaxSize(t *testing.T) {
	data := layerLike(300000, 6)
	streams := []struct {
		name string
		c    Compression
		blob []byte
	}{
		{"uncompressed", Uncompressed, data},
		{"gzip", Gzip, gzipWith(t, data, 6, 0)},
		{"zstd", Zstd, zstdFrames(t, data, 100000)},
		{"xz", Xz, xzGo(t, data)},
		{"bzip2", Bzip2, runTool(t, data, "bzip2", "-c")},
	}
	for _, s := range streams {
		t.Run(s.name, func(t *testing.T) {
			for _, viaWriteTo := range []bool{true, false} {
				rc, err := Decompress(bytes.NewReader(s.blob), s.c, true, Options{MaxSize: int64(len(data))})
				if err != nil {
					t.Fatal(err)
				}
				if got, err := readAllWith(rc, viaWriteTo); err != nil || len(got) != len(data) {
					t.Errorf("at the limit (WriteTo=%v): %d bytes, %v; want %d, no error", viaWriteTo, len(got), err, len(data))
				}
				for _, limit := range []int64{int64(len(data)) - 1, 1000, 1} {
					rc, err := Decompress(bytes.NewReader(s.blob), s.c, true, Options{MaxSize: limit})
					if err != nil {
						t.Fatal(err)
					}
					got, err := readAllWith(rc, viaWriteTo)
					if !errors.Is(err, ErrTooLarge) {
						t.Errorf("limit %d (WriteTo=%v): error %v, want ErrTooLarge", limit, viaWriteTo, err)
					}
					if int64(len(got)) != limit || !bytes.Equal(got, data[:len(got)]) {
						t.Errorf("limit %d (WriteTo=%v): got %d bytes, want the first %d", limit, viaWriteTo, len(got), limit)
					}
				}
			}
		})
	}
}

func TestDecompressDefaultLimits(t *testing.T) {
	if got := (Options{}).maxSize(); got != DefaultMaxSize {
		t.Errorf("zero MaxSize = %d, want DefaultMaxSize", got)
	}
	if got := (Options{MaxSize: -1}).maxSize(); got != 1<<63-1 {
		t.Errorf("negative MaxSize = %d, want no limit", got)
	}
	tests := []struct {
		max    int64
		lo, hi uint64
		want   uint64
	}{
		{1, 8 << 20, 512 << 20, 8 << 20},
		{100 << 20, 8 << 20, 512 << 20, 128 << 20},
		{128 << 20, 8 << 20, 512 << 20, 128 << 20},
		{DefaultMaxSize, 8 << 20, 512 << 20, 512 << 20},
		{1<<63 - 1, 64 << 20, 1536 << 20, 1536 << 20},
	}
	for _, tt := range tests {
		if got := memoryBound(tt.max, tt.lo, tt.hi); got != tt.want {
			t.Errorf("memoryBound(%d, %d, %d) = %d, want %d", tt.max, tt.lo, tt.hi, got, tt.want)
		}
	}
}

// failingReader returns its data, then err.
type failingReader struct {
	data []byte
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestDecompressInputError(t *testing.T) {
	data := layerLike(1<<20, 7)
	errDigest := errors.New("image: blob sha256:abc: digest mismatch")
	streams := []struct {
		name string
		c    Compression
		blob []byte
	}{
		{"uncompressed", Uncompressed, data},
		{"gzip", Gzip, gzipWith(t, data, 6, 0)},
		{"zstd", Zstd, zstdFrames(t, data, 1<<20)},
		{"xz", Xz, xzGo(t, data)},
		{"bzip2", Bzip2, runTool(t, data, "bzip2", "-c")},
	}
	for _, s := range streams {
		for _, viaWriteTo := range []bool{true, false} {
			src := &failingReader{data: s.blob[:len(s.blob)/2], err: errDigest}
			rc, err := Decompress(src, s.c, true, Options{})
			if err == nil {
				_, err = readAllWith(rc, viaWriteTo)
			}
			if !errors.Is(err, errDigest) {
				t.Errorf("%s (WriteTo=%v): error %v, want the reader's error", s.name, viaWriteTo, err)
				continue
			}
			var de *DecodeError
			if errors.As(err, &de) {
				t.Errorf("%s: the reader's error %v is reported as bad data", s.name, err)
			}
			if want := "layer: reading " + s.c.String() + " input: "; !strings.HasPrefix(err.Error(), want) {
				t.Errorf("%s: error %q, want prefix %q", s.name, err, want)
			}
		}
	}
	// An error before anything arrives.
	if _, err := Decompress(&failingReader{err: errDigest}, Gzip, true, Options{}); !errors.Is(err, errDigest) {
		t.Errorf("Decompress of a failing reader: %v, want the reader's error", err)
	}
}

func TestDecompressWriterError(t *testing.T) {
	errFull := errors.New("disk full")
	gz := gzipWith(t, layerLike(1<<20, 8), 6, 0)
	for _, c := range []Compression{Gzip, Zstd} {
		blob := gz
		if c == Zstd {
			blob = zstdFrames(t, layerLike(1<<20, 8), 1<<20)
		}
		rc, err := Decompress(bytes.NewReader(blob), c, true, Options{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = rc.(io.WriterTo).WriteTo(failingWriter{errFull})
		if err != errFull {
			t.Errorf("%v: WriteTo to a failing writer = %v, want the writer's error unchanged", c, err)
		}
	}
}

type failingWriter struct{ err error }

func (w failingWriter) Write(p []byte) (int, error) { return 0, w.err }

func TestDecompressClose(t *testing.T) {
	rc, err := Decompress(bytes.NewReader(zstdFrames(t, layerLike(10000, 9), 1<<20)), Zstd, true, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if _, err := rc.Read(make([]byte, 10)); err == nil {
		t.Error("Read after Close succeeded")
	}
	if err := rc.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

func TestDecompressUnknownCompression(t *testing.T) {
	if _, err := Decompress(bytes.NewReader(nil), Compression(42), true, Options{}); err == nil {
		t.Error("Decompress with compression(42) succeeded")
	}
}

func TestCheckXzDict(t *testing.T) {
	small := xzGo(t, []byte("hello"))
	if err := checkXzDict(small, 64<<20); err != nil {
		t.Errorf("checkXzDict(ulikunitz default) = %v", err)
	}
	big := runTool(t, []byte("hello"), "xz", "-c", "--lzma2=dict=256MiB")
	if err := checkXzDict(big, 64<<20); err == nil {
		t.Error("checkXzDict(256 MiB dictionary, limit 64 MiB) = nil, want an error")
	}
	if err := checkXzDict(big, 512<<20); err != nil {
		t.Errorf("checkXzDict(256 MiB dictionary, limit 512 MiB) = %v", err)
	}
	_, err := decompressAll(big, Xz, true, Options{MaxSize: 1 << 20})
	if err == nil || !strings.Contains(err.Error(), "dictionary") {
		t.Errorf("Decompress(xz with 256 MiB dictionary, MaxSize 1 MiB) error = %v, want a dictionary error", err)
	}
	got, err := decompressAll(big, Xz, true, Options{})
	if err != nil || string(got) != "hello" {
		t.Errorf("Decompress(xz with 256 MiB dictionary) = %q, %v", got, err)
	}
}

func TestDecompressZstdWindowLimit(t *testing.T) {
	data := layerLike(100000, 10)
	blob := runTool(t, data, "zstd", "-c", "-q", "--long=27") // from stdin: the window is not shrunk to the size
	_, err := decompressAll(blob, Zstd, true, Options{MaxSize: 1 << 20})
	if err == nil || !strings.Contains(err.Error(), "window above the limit of 8 MiB") {
		t.Errorf("Decompress(128 MiB window, MaxSize 1 MiB) error = %v, want a window limit error", err)
	}
	got, err := decompressAll(blob, Zstd, true, Options{})
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("Decompress(128 MiB window) = %d bytes, %v", len(got), err)
	}
}
