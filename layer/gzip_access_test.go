package layer

import (
	"bytes"
	stdgzip "compress/gzip"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"reflect"
	"slices"
	"sort"
	"sync"
	"testing"
	"testing/iotest"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// recordGzip decodes blob with a Recorder of the given interval, through WriteTo or small
// Reads, and returns the output and the map.
func recordGzip(blob []byte, interval int64, viaWriteTo bool) ([]byte, *Map, error) {
	rec := &Recorder{Interval: interval}
	rc, err := Decompress(bytes.NewReader(blob), Gzip, true, Options{Record: rec, MaxSize: -1})
	if err != nil {
		return nil, nil, err
	}
	defer rc.Close()
	out, err := readAllWith(rc, viaWriteTo)
	if err != nil {
		return out, nil, err
	}
	m, err := rec.Map()
	return out, m, err
}

// readVia reads n bytes at offset off of the uncompressed stream the way a random-access
// reader does: from the last point at or before off.
func readVia(m *Map, blob []byte, off, n int64) ([]byte, error) {
	i := sort.Search(len(m.Points), func(i int) bool { return m.Points[i].Out > off }) - 1
	r, err := m.open(bytes.NewReader(blob), int64(len(blob)), i)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	if _, err := io.CopyN(io.Discard, r, off-m.Points[i].Out); err != nil {
		return nil, fmt.Errorf("discarding to %d from point %d: %w", off, i, err)
	}
	got := make([]byte, n)
	k, err := io.ReadFull(r, got)
	if err == io.ErrUnexpectedEOF || err == io.EOF {
		err = nil // short at the end of the stream; the caller compares lengths
	}
	return got[:k], err
}

// checkMap checks the invariants of a gzip map of the stream want, taken from blob.
func checkMap(t *testing.T, m *Map, blob, want []byte, interval int64) {
	t.Helper()
	if m.Access != AccessGzip {
		t.Errorf("Access = %v, want %v", m.Access, AccessGzip)
	}
	if m.Size != int64(len(want)) {
		t.Errorf("Size = %d, want %d", m.Size, len(want))
	}
	dec, err := windowDecoder()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Points) == 0 || m.Points[0].Out != 0 || m.Points[0].In != 0 || m.Points[0].Window != nil {
		t.Fatalf("Points[0] = %+v, want the first member header {0 0 nil}", m.Points[:min(1, len(m.Points))])
	}
	for i, p := range m.Points {
		if i > 0 && p.Out-m.Points[i-1].Out < interval {
			t.Errorf("Points[%d].Out = %d, only %d after the previous point, want at least %d", i, p.Out, p.Out-m.Points[i-1].Out, interval)
		}
		if p.Out > m.Size || p.In < 0 || p.In > int64(len(blob))*8 {
			t.Errorf("Points[%d] = {%d %d}, outside the stream (%d bytes) or blob (%d bytes)", i, p.Out, p.In, m.Size, len(blob))
		}
		if p.Window == nil && (p.In%8 != 0 || !bytes.HasPrefix(blob[p.In/8:], gzipMagic)) {
			t.Errorf("Points[%d] = {%d %d} has no window and is not at a member header", i, p.Out, p.In)
		}
		if p.Window == nil || p.Out > m.Size {
			continue
		}
		if len(p.Window) == 0 {
			t.Errorf("Points[%d] = {%d %d}: an empty Window, which a cache could read back as nil", i, p.Out, p.In)
		}
		// A window is the output before the point, or a sparse copy of it.
		w, err := dec.DecodeAll(p.Window, nil)
		if err != nil || len(w) > windowSize || int64(len(w)) > p.Out {
			t.Errorf("Points[%d] = {%d %d}: window of %d bytes, %v", i, p.Out, p.In, len(w), err)
			continue
		}
		before := want[p.Out-int64(len(w)) : p.Out]
		for j := range w {
			if w[j] != 0 && w[j] != before[j] {
				t.Errorf("Points[%d] = {%d %d}: window byte %d of %d is %#x, want %#x (or 0)", i, p.Out, p.In, j, len(w), w[j], before[j])
				break
			}
		}
	}
}

// throughCache returns m as the index cache gives it back: encoded and decoded.
func throughCache(t *testing.T, m *Map) *Map {
	t.Helper()
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatalf("MarshalBinary: %v", err)
	}
	got, err := UnmarshalMap(b)
	if err != nil {
		t.Fatalf("UnmarshalMap: %v", err)
	}
	if !reflect.DeepEqual(got, m) {
		t.Fatalf("UnmarshalMap(MarshalBinary(m)) differs from m")
	}
	return got
}

// gzipAccessStreams are the gzip streams checkpoints are tested on: every kind of block
// and member boundary the encoders in use make.
func gzipAccessStreams(data []byte) []struct {
	name string
	blob func(t testing.TB) []byte
} {
	small := data[:len(data)/4]
	q := len(data) / 3
	return []struct {
		name string
		blob func(t testing.TB) []byte
	}{
		{"gzip -1", func(t testing.TB) []byte { return runTool(t, data, "gzip", "-1", "-c") }},
		{"gzip -9", func(t testing.TB) []byte { return runTool(t, data, "gzip", "-9", "-c") }},
		{"pigz", func(t testing.TB) []byte { return pigz(t, data) }},
		{"pigz -0", func(t testing.TB) []byte { return pigz(t, data, "-0") }},
		{"pigz --rsyncable", func(t testing.TB) []byte { return pigz(t, data, "--rsyncable") }},
		{"go flushes", func(t testing.TB) []byte { return stdGzipWith(t, data, 6, 20000) }},
		{"klauspost flushes", func(t testing.TB) []byte { return gzipWith(t, data, 6, 3000) }},
		{"stored", func(t testing.TB) []byte { return gzipWith(t, data, flate.NoCompression, 0) }},
		{"stored small blocks", func(t testing.TB) []byte { return stdGzipWith(t, small, 0, 777) }},
		{"huffman only", func(t testing.TB) []byte { return gzipWith(t, data, flate.HuffmanOnly, 0) }},
		{"all header fields", func(t testing.TB) []byte { return gzipAllHeaderFields(t, small) }},
		{"incompressible", func(t testing.TB) []byte { return gzipWith(t, incompressible(len(small)), 6, 0) }},
		{"zeros", func(t testing.TB) []byte { return gzipWith(t, make([]byte, len(data)), 9, 0) }},
		{"members", func(t testing.TB) []byte {
			return cat(gzipWith(t, data[:q], 6, 0), pigz(t, data[q:2*q]), gzipWith(t, nil, 6, 0),
				runTool(t, data[2*q:2*q+5], "gzip", "-c"), runTool(t, data[2*q+5:], "gzip", "-1", "-c"))
		}},
		{"many small members", func(t testing.TB) []byte {
			var parts [][]byte
			for i := 0; i < len(small); i += 3000 {
				parts = append(parts, gzipWith(t, small[i:min(i+3000, len(small))], 6, 0))
			}
			return cat(parts...)
		}},
		{"zero padding", func(t testing.TB) []byte {
			return cat(gzipWith(t, small, 6, 0), gzipWith(t, small, 1, 0), make([]byte, 10000))
		}},
		{"empty", func(t testing.TB) []byte { return gzipWith(t, nil, 6, 0) }},
		{"one byte", func(t testing.TB) []byte { return gzipWith(t, []byte{7}, 6, 0) }},
	}
}

func TestGzipCheckpoints(t *testing.T) {
	size, reads := 2<<20, 300
	if testing.Short() {
		size, reads = 160<<10, 30 // make test runs every package under -race -short
	}
	data := layerLike(size, 61)
	for _, tt := range gzipAccessStreams(data) {
		t.Run(tt.name, func(t *testing.T) {
			blob := tt.blob(t)
			plain, err := decompressAll(blob, Gzip, true, Options{MaxSize: -1})
			if err != nil {
				t.Fatalf("Decompress without Record: %v", err)
			}
			for _, interval := range []int64{4096, 100 << 10, DefaultInterval} {
				viaWriteTo := interval != 4096
				want, m, err := recordGzip(blob, interval, viaWriteTo)
				if err != nil {
					t.Fatalf("interval %d: Decompress with Record: %v", interval, err)
				}
				if !bytes.Equal(want, plain) {
					t.Fatalf("interval %d: output with Record differs from without at byte %d (%d vs %d bytes)", interval, firstDiff(want, plain), len(want), len(plain))
				}
				checkMap(t, m, blob, want, interval)
				if t.Failed() {
					return
				}
				m = throughCache(t, m)

				// Every point resumes: some KiB, and for a few the whole rest.
				for i, p := range m.Points {
					n := int64(9000)
					if i%100 == 1 || i == len(m.Points)-1 {
						n = m.Size
					}
					got, err := readVia(m, blob, p.Out, n)
					wantAt := want[p.Out:min(p.Out+n, m.Size)]
					if err != nil || !bytes.Equal(got, wantAt) {
						t.Fatalf("interval %d: resuming at Points[%d] = {%d %d}: %d bytes, %v; differs at %d of %d",
							interval, i, p.Out, p.In, len(got), err, firstDiff(got, wantAt), len(wantAt))
					}
				}

				// Random reads, across point and member boundaries.
				rng := rand.New(rand.NewPCG(uint64(interval), uint64(len(blob))))
				k := reads
				if interval == DefaultInterval {
					k = reads / 10
				}
				for range k {
					off := rng.Int64N(m.Size + 1)
					n := rng.Int64N(min(3*interval, 128<<10)) + 1
					if rng.IntN(4) == 0 {
						n = rng.Int64N(600) + 1
					}
					got, err := readVia(m, blob, off, n)
					wantAt := want[off:min(off+n, m.Size)]
					if err != nil || !bytes.Equal(got, wantAt) {
						t.Fatalf("interval %d: reading %d bytes at %d: %d bytes, %v; differs at %d of %d",
							interval, n, off, len(got), err, firstDiff(got, wantAt), len(wantAt))
					}
				}
			}
		})
	}
}

// TestGzipCheckpointsDebianLayer records and checks a real layer (Debian's, built with Go's
// compress/gzip), and reports the size of its points.
func TestGzipCheckpointsDebianLayer(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	blob, err := os.ReadFile(debianLayer)
	if err != nil {
		t.Skipf("Debian test layer missing: %v", err)
	}
	want, m, err := recordGzip(blob, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	checkMap(t, m, blob, want, DefaultInterval)
	rng := rand.New(rand.NewPCG(1, 2))
	for _, i := range append(rng.Perm(len(m.Points))[:min(len(m.Points), 20)], len(m.Points)-1) {
		p := m.Points[i]
		got, err := readVia(m, blob, p.Out, 1<<20)
		if wantAt := want[p.Out:min(p.Out+1<<20, m.Size)]; err != nil || !bytes.Equal(got, wantAt) {
			t.Fatalf("resuming at Points[%d] = {%d %d}: %v; differs at %d", i, p.Out, p.In, err, firstDiff(got, wantAt))
		}
	}
	t.Logf("%d MB out, %d points, %s", m.Size/1e6, len(m.Points), pointsSize(m))
}

// pointsSize describes how much a map's points take, per GiB of uncompressed stream.
func pointsSize(m *Map) string {
	var windows int
	for _, p := range m.Points {
		windows += len(p.Window) + 16 // Out and In
	}
	return fmt.Sprintf("%d bytes of points, %.2f MiB/GiB, %.0f bytes per point",
		windows, float64(windows)/float64(m.Size)*1024, float64(windows)/float64(len(m.Points)))
}

func TestGzipRecordParallelIgnored(t *testing.T) {
	data := layerLike(600<<10, 62)
	blob := gzipWith(t, data, 6, 0)
	rec := &Recorder{Interval: 64 << 10}
	rc, err := Decompress(bytes.NewReader(blob), Gzip, true, Options{Record: rec, Parallel: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Decompress with Record and Parallel: %d bytes, %v", len(got), err)
	}
	if _, ok := rc.(*reader).dec.(*gzipReader); !ok {
		t.Errorf("decoder is %T, want the sequential *gzipReader", rc.(*reader).dec)
	}
	m, err := rec.Map()
	if err != nil {
		t.Fatal(err)
	}
	checkMap(t, m, blob, data, 64<<10)
}

// TestGzipRecordIncomplete: a map is only had for a stream decoded cleanly to its end.
func TestGzipRecordIncomplete(t *testing.T) {
	data := layerLike(300<<10, 63)
	blob := gzipWith(t, data, 6, 0)
	corrupt := bytes.Clone(blob)
	corrupt[len(corrupt)-5] ^= 1 // the length in the trailer
	tests := []struct {
		name string
		blob []byte
		opts Options
		read int64 // bytes read before asking for the map; -1 for all
	}{
		{"truncated", blob[:len(blob)-100], Options{}, -1},
		{"corrupt trailer", corrupt, Options{}, -1},
		{"garbage after", cat(blob, []byte("junk")), Options{}, -1},
		{"too large", blob, Options{MaxSize: 100 << 10}, -1},
		{"not read to the end", blob, Options{}, 200 << 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &Recorder{Interval: 4096}
			tt.opts.Record = rec
			rc, err := Decompress(bytes.NewReader(tt.blob), Gzip, true, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			if tt.read < 0 {
				_, err = io.Copy(io.Discard, rc)
			} else {
				_, err = io.CopyN(io.Discard, rc, tt.read)
			}
			if (err == nil) != (tt.read >= 0) {
				t.Fatalf("reading: %v", err)
			}
			if m, err := rec.Map(); !errors.Is(err, ErrNoMap) {
				t.Errorf("Map() = %v, %v; want %v", m, err, ErrNoMap)
			}
		})
	}
}

// TestGzipResumeErrors: a resumed reader reports damage as Decompress does, and a bad point
// is an error, never a panic or a huge allocation.
func TestGzipResumeErrors(t *testing.T) {
	data := layerLike(400<<10, 64)
	first, second := gzipWith(t, data[:300<<10], 6, 0), gzipWith(t, data[300<<10:], 6, 0)
	blob := cat(first, second)
	_, m, err := recordGzip(blob, 50<<10, true)
	if err != nil {
		t.Fatal(err)
	}
	var mid Point // a point with a window in the first member
	for _, p := range m.Points {
		if p.Window != nil && p.In/8 < int64(len(first)) {
			mid = p
		}
	}
	if mid.Window == nil {
		t.Fatal("no point inside the first member")
	}
	enc, _ := zstd.NewWriter(nil)
	defer enc.Close()
	withWindow := func(w []byte) Point { return Point{Out: mid.Out, In: mid.In, Window: w} }
	badCRC := bytes.Clone(blob)
	badCRC[len(blob)-8] ^= 1 // the second member's CRC
	badFirstCRC := bytes.Clone(blob)
	badFirstCRC[len(first)-8] ^= 1 // the first member's CRC: cannot be checked from mid

	tests := []struct {
		name    string
		blob    []byte
		p       Point
		open    bool // the error comes from openGzipAt, not from reading
		decode  bool // a *DecodeError
		eof     bool // errors.Is(err, io.ErrUnexpectedEOF)
		wantErr bool
	}{
		{"fine", blob, mid, false, false, false, false},
		{"unchecked first CRC", badFirstCRC, mid, false, false, false, false},
		{"bad later CRC", badCRC, mid, false, true, false, true},
		{"truncated", blob[:len(first)+100], mid, false, true, true, true},
		{"truncated at the point", blob[:mid.In/8], mid, false, true, true, true},
		{"bit offset past the end", blob, Point{Out: 1, In: int64(len(blob))*8 + 8, Window: mid.Window}, true, false, false, true},
		{"negative bit offset", blob, Point{In: -8}, true, false, false, true},
		{"no window inside a block", blob, Point{Out: 1, In: mid.In | 1}, true, false, false, true},
		{"no window, not a header", blob, Point{Out: mid.Out, In: mid.In &^ 7}, true, true, false, true},
		{"window too large", blob, withWindow(enc.EncodeAll(make([]byte, 1<<20), nil)), true, false, false, true},
		{"window one byte too large", blob, withWindow(enc.EncodeAll(make([]byte, windowSize+1), nil)), true, false, false, true},
		{"window garbage", blob, withWindow([]byte("not zstd at all")), true, false, false, true},
		{"window truncated", blob, withWindow(mid.Window[:len(mid.Window)/2]), true, false, true, true},
		{"window damaged", blob, withWindow(damaged(mid.Window, len(mid.Window)-20)), true, false, false, true}, // the checksum
		{"window too short", blob, withWindow(enc.EncodeAll(data[:100], nil)), false, true, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := openGzipAt(bytes.NewReader(tt.blob), int64(len(tt.blob)), tt.p)
			if err == nil {
				if tt.open {
					r.Close()
					t.Fatal("openGzipAt succeeded, want an error")
				}
				_, err = io.Copy(io.Discard, r)
				r.Close()
			} else if !tt.open {
				t.Fatalf("openGzipAt: %v", err)
			}
			if (err != nil) != tt.wantErr {
				t.Fatalf("error %v, want one: %v", err, tt.wantErr)
			}
			if err == nil {
				return
			}
			if errors.As(err, new(*DecodeError)) != tt.decode {
				t.Errorf("error %q (%T): is a *DecodeError: %v, want %v", err, err, !tt.decode, tt.decode)
			}
			if errors.Is(err, io.ErrUnexpectedEOF) != tt.eof {
				t.Errorf("error %q: is io.ErrUnexpectedEOF: %v, want %v", err, !tt.eof, tt.eof)
			}
		})
	}
}

// emptyBlocks compresses first, then n empty stored blocks (sync flushes, 5 bytes each), then
// second.
func emptyBlocks(t testing.TB, first []byte, n int, second []byte) []byte {
	var b bytes.Buffer
	w, _ := stdgzip.NewWriterLevel(&b, 6)
	w.Write(first)
	for range n {
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	w.Write(second)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestGzipSparseWindow: a window keeps only the bytes the output after its point copies,
// unless the parse ahead runs out of input (here in a long run of empty stored blocks), and
// then it keeps them all. Resuming is right either way.
func TestGzipSparseWindow(t *testing.T) {
	first, second := layerLike(40<<10, 67), layerLike(20<<10, 68)
	second = append(bytes.Clone(first[len(first)-5000:]), second...) // copies from the window
	for _, tt := range []struct {
		name    string
		flushes int // empty stored blocks of 5 bytes between first and second
		full    bool
	}{
		{"sparse", 1000, false},
		{"sparse across empty blocks", walkInput / 5 * 7 / 10, false},
		{"full: empty blocks beyond the parse", walkInput/5 + 1000, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			blob := emptyBlocks(t, first, tt.flushes, second)
			interval := int64(len(first)) // the point is at the first header after it
			want, m, err := recordGzip(blob, interval, true)
			if err != nil {
				t.Fatal(err)
			}
			checkMap(t, m, blob, want, interval)
			i := slices.IndexFunc(m.Points, func(p Point) bool { return p.Out == interval })
			if i < 0 {
				t.Fatalf("no point at %d, between the two parts", interval)
			}
			dec, _ := windowDecoder()
			window, err := dec.DecodeAll(m.Points[i].Window, nil)
			if err != nil {
				t.Fatal(err)
			}
			if full := bytes.Equal(window, first[len(first)-windowSize:]); full != tt.full {
				t.Errorf("window of %d bytes is the whole 32 KiB before the point: %v, want %v", len(window), full, tt.full)
			}
			got, err := readVia(m, blob, m.Points[i].Out, m.Size)
			if err != nil || !bytes.Equal(got, second) {
				t.Errorf("resuming at the point: %d bytes, %v; differs at %d", len(got), err, firstDiff(got, second))
			}
		})
	}
}

// TestGzipRecordReproducible: the map depends on the stream alone, not on how the blob's
// reader cuts it.
func TestGzipRecordReproducible(t *testing.T) {
	data := layerLike(300<<10, 69)
	for _, blob := range [][]byte{
		gzipWith(t, data, 6, 0),
		stdGzipWith(t, data, 1, 5000),
		cat(gzipWith(t, data[:1000], 9, 0), gzipWith(t, data[1000:], flate.NoCompression, 0)),
		emptyBlocks(t, data[:50<<10], walkInput/5+1000, data[40<<10:]), // the parse ahead ends in them
	} {
		var maps []*Map
		for _, r := range []io.Reader{bytes.NewReader(blob), iotest.OneByteReader(bytes.NewReader(blob)), iotest.HalfReader(bytes.NewReader(blob))} {
			rec := &Recorder{Interval: 4096}
			rc, err := Decompress(r, Gzip, true, Options{Record: rec})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, rc); err != nil {
				t.Fatal(err)
			}
			m, err := rec.Map()
			if err != nil {
				t.Fatal(err)
			}
			maps = append(maps, m)
		}
		for i, m := range maps[1:] {
			if !reflect.DeepEqual(m, maps[0]) {
				t.Errorf("reader %d: a different map (%d points) than from a bytes.Reader (%d points)", i+1, len(m.Points), len(maps[0].Points))
			}
		}
	}
}

// damaged returns b with bit 0 of byte i flipped.
func damaged(b []byte, i int) []byte {
	b = bytes.Clone(b)
	b[i] ^= 1
	return b
}

type failingReaderAt struct {
	r     io.ReaderAt
	after int64
	err   error
}

func (f failingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > f.after {
		return 0, f.err
	}
	return f.r.ReadAt(p, off)
}

func TestGzipResumeInputError(t *testing.T) {
	data := layerLike(400<<10, 65)
	blob := gzipWith(t, data, 6, 0)
	_, m, err := recordGzip(blob, 100<<10, true)
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	p := m.Points[1]
	r, err := openGzipAt(failingReaderAt{bytes.NewReader(blob), p.In/8 + 20000, boom}, int64(len(blob)), p)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	_, err = io.Copy(io.Discard, r)
	if !errors.Is(err, boom) || errors.As(err, new(*DecodeError)) {
		t.Fatalf("reading with a failing source: %v, want %v and not a *DecodeError", err, boom)
	}
	if _, err := r.Read(make([]byte, 1)); !errors.Is(err, boom) {
		t.Errorf("Read after the failure: %v, want %v again", err, boom)
	}
	r.Close()
	if _, err := r.Read(make([]byte, 1)); err != errClosed {
		t.Errorf("Read after Close: %v, want %v", err, errClosed)
	}
}

// benchGzipBlob is the gzip stream the checkpoint benchmarks decode: $LAYER_BENCH_GZIP, or
// about 100 MB of layer-like data at gzip level 6.
func benchGzipBlob(b *testing.B) []byte {
	if name := os.Getenv("LAYER_BENCH_GZIP"); name != "" {
		blob, err := os.ReadFile(name)
		if err != nil {
			b.Fatal(err)
		}
		return blob
	}
	return benchGzipSynthetic()
}

var benchGzipSynthetic = sync.OnceValue(func() []byte {
	var gz bytes.Buffer
	w, _ := gzip.NewWriterLevel(&gz, 6)
	w.Write(layerLike(100<<20, 66))
	w.Close()
	return gz.Bytes()
})

// BenchmarkGzipRecord compares the scan's decoding with and without checkpoints (MB/s of
// uncompressed output): the target is record >= 0.8 × plain. Run it as
//
//	go test -run '^$' -bench GzipRecord -count 10 ./layer/ | benchstat -col /mode -
//
// with LAYER_BENCH_GZIP set to a real layer to measure on that.
func BenchmarkGzipRecord(b *testing.B) {
	blob := benchGzipBlob(b)
	size, err := io.Copy(io.Discard, mustDecompress(b, blob, Options{}))
	if err != nil {
		b.Fatal(err)
	}
	for _, mode := range []string{"plain", "record"} {
		b.Run("mode="+mode, func(b *testing.B) {
			b.SetBytes(size)
			var m *Map
			for b.Loop() {
				var opts Options
				var rec *Recorder
				if mode == "record" {
					rec = &Recorder{}
					opts.Record = rec
				}
				rc := mustDecompress(b, blob, opts)
				if _, err := io.Copy(io.Discard, rc); err != nil {
					b.Fatal(err)
				}
				rc.Close()
				if rec != nil {
					if m, err = rec.Map(); err != nil {
						b.Fatal(err)
					}
				}
			}
			if m != nil {
				var n int
				for _, p := range m.Points {
					n += len(p.Window) + 16
				}
				b.ReportMetric(float64(n)/float64(m.Size)*1024, "MiB-points/GiB")
			}
		})
	}
}

// BenchmarkGzipWindow compresses the windows of every 1 MiB checkpoint of the benchmark
// stream at each zstd level, to choose windowLevel: it reports the points' size per GiB
// of uncompressed stream, and the time per window (ns/op).
func BenchmarkGzipWindow(b *testing.B) {
	blob := benchGzipBlob(b)
	_, m, err := recordGzip(blob, 0, true)
	if err != nil {
		b.Fatal(err)
	}
	dec, _ := windowDecoder()
	var windows [][]byte
	for _, p := range m.Points {
		if p.Window != nil {
			w, err := dec.DecodeAll(p.Window, nil)
			if err != nil {
				b.Fatal(err)
			}
			windows = append(windows, w)
		}
	}
	levels := []zstd.EncoderLevel{zstd.SpeedFastest, zstd.SpeedDefault, zstd.SpeedBetterCompression, zstd.SpeedBestCompression}
	for _, level := range levels {
		b.Run("level="+level.String(), func(b *testing.B) {
			enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(level), zstd.WithWindowSize(windowSize),
				zstd.WithLowerEncoderMem(true), zstd.WithZeroFrames(true), zstd.WithEncoderConcurrency(1))
			if err != nil {
				b.Fatal(err)
			}
			defer enc.Close()
			var dst []byte
			var total int
			for i := 0; b.Loop(); i++ {
				w := windows[i%len(windows)]
				dst = enc.EncodeAll(w, dst[:0])
				if i < len(windows) {
					total += len(dst) + 16
				}
			}
			if b.N >= len(windows) {
				b.ReportMetric(float64(total)/float64(m.Size)*1024, "MiB-points/GiB")
			}
		})
	}
}
