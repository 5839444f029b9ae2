package layer

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// spillFiles hands out spill files in a test's temporary directory and counts the calls.
type spillFiles struct {
	t     testing.TB
	calls int
	f     *os.File
	err   error // returned instead of a file
	ro    bool  // hand out a file opened read-only: every write fails
}

func (s *spillFiles) spill() (*os.File, error) {
	s.calls++
	if s.calls > 1 {
		s.t.Errorf("Spill called %d times, want at most once", s.calls)
	}
	if s.err != nil {
		return nil, s.err
	}
	name := filepath.Join(s.t.TempDir(), "spill")
	f, err := os.Create(name)
	if err == nil && s.ro {
		f.Close()
		f, err = os.Open(name)
	}
	if err != nil {
		return nil, err
	}
	s.t.Cleanup(func() { f.Close() })
	s.f = f
	return f, nil
}

// zstdRecorded decodes blob with a Recorder (with a frame limit of limit when not zero),
// through Read or WriteTo.
func zstdRecorded(t testing.TB, blob []byte, c Compression, limit int64, spill func() (*os.File, error), viaWriteTo bool) ([]byte, *Recorder, error) {
	t.Helper()
	rec := &Recorder{Spill: spill}
	rec.zs.limit = limit
	rc, err := Decompress(bytes.NewReader(blob), c, true, Options{Record: rec})
	if err != nil {
		return nil, rec, err
	}
	defer rc.Close()
	got, err := readAllWith(rc, viaWriteTo)
	return got, rec, err
}

// checkZstdMap checks m's invariants for the stream want, and that resuming at every point
// and at random offsets gives want's bytes. src holds the frames, size bytes.
func checkZstdMap(t *testing.T, m *Map, want []byte, src io.ReaderAt, size int64, reads int) {
	t.Helper()
	if m.Size != int64(len(want)) {
		t.Fatalf("Map.Size = %d, want %d", m.Size, len(want))
	}
	if err := m.validate(); err != nil {
		t.Fatalf("Map.validate() = %v", err)
	}
	if m.Access == AccessDirect {
		return
	}
	if len(m.Points) == 0 {
		if m.Size != 0 {
			t.Fatalf("Map of %d bytes has no points", m.Size)
		}
		return
	}
	if m.Points[0].Out != 0 {
		t.Fatalf("Points[0].Out = %d, want 0", m.Points[0].Out)
	}
	for i, p := range m.Points {
		if i > 0 && p.Out <= m.Points[i-1].Out {
			t.Fatalf("Points[%d].Out = %d after %d: not increasing", i, p.Out, m.Points[i-1].Out)
		}
		if p.Out > m.Size || (p.Out == m.Size && m.Size > 0) || p.In < 0 || p.In >= size || p.Window != nil {
			t.Fatalf("Points[%d] = {Out %d, In %d} in a %d-byte stream from %d bytes", i, p.Out, p.In, m.Size, size)
		}
		if i > 0 && p.In <= m.Points[i-1].In {
			t.Fatalf("Points[%d].In = %d after %d: not increasing", i, p.In, m.Points[i-1].In)
		}
	}
	// Every point, to the end of its frame or of the stream.
	for i, p := range m.Points {
		end := m.Size
		if i+1 < len(m.Points) {
			end = m.Points[i+1].Out
		}
		if i == 0 {
			end = m.Size // one point decodes the whole stream
		}
		rc, err := openZstdAt(src, size, p)
		if err != nil {
			t.Fatalf("openZstdAt(point %d) = %v", i, err)
		}
		got := make([]byte, end-p.Out)
		if _, err := io.ReadFull(rc, got); err != nil {
			t.Fatalf("point %d {Out %d, In %d}: reading %d bytes: %v", i, p.Out, p.In, len(got), err)
		}
		if !bytes.Equal(got, want[p.Out:end]) {
			t.Fatalf("point %d {Out %d, In %d}: bytes differ at %d", i, p.Out, p.In, p.Out+int64(firstDiff(got, want[p.Out:end])))
		}
		if i == 0 || i == len(m.Points)-1 {
			if n, err := rc.Read(make([]byte, 1)); n != 0 || err != io.EOF {
				t.Fatalf("point %d: reading past the end = %d, %v; want 0, io.EOF", i, n, err)
			}
		}
		rc.Close()
	}
	if m.Size == 0 {
		return
	}
	// Random reads, the way a Reader makes them.
	rng := rand.New(rand.NewPCG(uint64(len(want)), 7))
	for range reads {
		off := rng.Int64N(m.Size)
		n := min(1+rng.Int64N(300<<10), m.Size-off)
		if rng.IntN(4) == 0 {
			n = min(1+rng.Int64N(100), m.Size-off) // small reads, often across a boundary
		}
		i := zstdPointBefore(m.Points, off)
		rc, err := openZstdAt(src, size, m.Points[i])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.CopyN(io.Discard, rc, off-m.Points[i].Out); err != nil {
			t.Fatalf("skipping to %d from point %d: %v", off, i, err)
		}
		got := make([]byte, n)
		if _, err := io.ReadFull(rc, got); err != nil {
			t.Fatalf("reading %d bytes at %d from point %d: %v", n, off, i, err)
		}
		if !bytes.Equal(got, want[off:off+n]) {
			t.Fatalf("reading %d bytes at %d from point %d: differ at %d", n, off, i, off+int64(firstDiff(got, want[off:off+n])))
		}
		rc.Close()
	}
}

// zstdPointBefore returns the index of the last point with Out <= off.
func zstdPointBefore(points []Point, off int64) int {
	i := 0
	for i+1 < len(points) && points[i+1].Out <= off {
		i++
	}
	return i
}

// zstdMapSource returns where m's frames are: the spill file, or the blob.
func zstdMapSource(t *testing.T, m *Map, blob []byte, s *spillFiles) (io.ReaderAt, int64) {
	t.Helper()
	if m.Access != AccessSpill {
		return bytes.NewReader(blob), int64(len(blob))
	}
	fi, err := s.f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return s.f, fi.Size()
}

// zstdOneFrame compresses data as one frame with the streaming encoder, which declares no
// content size, as a layer written by a streaming tool does.
func zstdOneFrame(t testing.TB, data []byte, level zstd.EncoderLevel) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := zstd.NewWriter(&b, zstd.WithEncoderLevel(level), zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestZstdRecord(t *testing.T) {
	size, reads := 5<<20, 2000
	if testing.Short() {
		size, reads = 2<<20+12345, 40 // still three spill frames
	}
	data := layerLike(size, 11)
	first, second := data[:700000], data[700000:]
	slow := data[:1300000] // for the slow decoders: still two spill frames
	noise := make([]byte, 300<<10)
	rand.NewChaCha8([32]byte{1}).Read(noise)
	tests := []struct {
		name   string
		c      Compression
		blob   func(t *testing.T) []byte
		want   []byte
		limit  int64 // frame limit, zero for zstdFrameLimit
		access Access
	}{
		{"go frames", Zstd, func(t *testing.T) []byte { return zstdFrames(t, data, 300000) }, data, 0, AccessZstdFrames},
		{"go frames, small interval", Zstd, func(t *testing.T) []byte { return zstdFrames(t, data, 100000) }, data, 0, AccessZstdFrames},
		{"go frames and skippable frames", Zstd, func(t *testing.T) []byte {
			return cat(zstdSkippableFrame("seekable index?"), zstdFrames(t, first, 200000), zstdSkippableFrame(""),
				zstdSkippableFrame("two in a row"), zstdFrames(t, second, 1<<20), zstdSkippableFrame("manifest"))
		}, data, 0, AccessZstdFrames},
		{"go frames with empty frames", Zstd, func(t *testing.T) []byte {
			return cat(zstdFrames(t, nil, 1), zstdFrames(t, first, 1<<20), zstdFrames(t, nil, 1), zstdFrames(t, nil, 1),
				zstdFrames(t, second, 1<<20), zstdFrames(t, nil, 1))
		}, data, 0, AccessZstdFrames},
		{"zstd concatenated", Zstd, func(t *testing.T) []byte {
			return cat(runTool(t, first, "zstd", "-c", "-q"), runTool(t, second[:1<<20], "zstd", "-c", "-q", "-19"),
				runTool(t, second[1<<20:], "zstd", "-c", "-q", "--no-check"))
		}, data, 0, AccessZstdFrames},
		{"one small frame", Zstd, func(t *testing.T) []byte { return zstdOneFrame(t, data[:1<<20], zstd.SpeedDefault) }, data[:1<<20], 0, AccessZstdFrames},
		{"empty frame", Zstd, func(t *testing.T) []byte { return zstdFrames(t, nil, 1) }, nil, 0, AccessZstdFrames},
		{"skippable frame only", Zstd, func(t *testing.T) []byte { return zstdSkippableFrame("x") }, nil, 0, AccessZstdFrames},
		{"one large frame", Zstd, func(t *testing.T) []byte { return zstdOneFrame(t, data, zstd.SpeedFastest) }, data, 1 << 20, AccessSpill},
		{"one large frame with its size", Zstd, func(t *testing.T) []byte { return zstdFrames(t, data, len(data)) }, data, 1 << 20, AccessSpill},
		{"zstd one frame", Zstd, func(t *testing.T) []byte { return runTool(t, data, "zstd", "-c", "-q") }, data, 1 << 20, AccessSpill},
		{"zstd file one frame", Zstd, func(t *testing.T) []byte { return runToolOnFile(t, data, "zstd", "-c", "-q") }, data, 1 << 20, AccessSpill},
		{"zstd --long one frame", Zstd, func(t *testing.T) []byte { return runTool(t, data, "zstd", "-c", "-q", "--long=27") }, data, 1 << 20, AccessSpill},
		{"large frame after small ones", Zstd, func(t *testing.T) []byte {
			return cat(zstdSkippableFrame("x"), zstdFrames(t, data[:300000], 100000), zstdSkippableFrame("y"),
				zstdOneFrame(t, data[300000:], zstd.SpeedDefault))
		}, data, 1 << 20, AccessSpill},
		{"large frame between small ones", Zstd, func(t *testing.T) []byte {
			return cat(zstdFrames(t, data[:500000], 200000), zstdFrames(t, data[500000:1900000], 1400000),
				zstdFrames(t, data[1900000:], 100000))
		}, data, 1 << 20, AccessSpill},
		{"frame too large in input", Zstd, func(t *testing.T) []byte {
			return cat(zstdFrames(t, data[:500000], 100000), zstdFrames(t, noise, len(noise)), zstdFrames(t, data[500000:], 100000))
		}, cat(data[:500000], noise, data[500000:]), 200 << 10, AccessSpill},
		{"xz", Xz, func(t *testing.T) []byte { return runTool(t, slow, "xz", "-c", "-1") }, slow, 0, AccessSpill},
		{"xz blocks", Xz, func(t *testing.T) []byte { return runTool(t, slow, "xz", "-c", "-1", "-T2", "--block-size=300KiB") }, slow, 0, AccessSpill},
		{"go xz", Xz, func(t *testing.T) []byte { return xzGo(t, slow) }, slow, 0, AccessSpill},
		{"bzip2", Bzip2, func(t *testing.T) []byte { return runTool(t, slow, "bzip2", "-c", "-1") }, slow, 0, AccessSpill},
		{"bzip2 empty", Bzip2, func(t *testing.T) []byte { return runTool(t, nil, "bzip2", "-c") }, nil, 0, AccessSpill},
		{"plain tar declared zstd", Zstd, func(t *testing.T) []byte { return cat(tarHeader("x"), data[:100000]) }, cat(tarHeader("x"), data[:100000]), 0, AccessDirect},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			blob := tt.blob(t)
			plain, err := decompressAll(blob, tt.c, true, Options{})
			if err != nil || !bytes.Equal(plain, tt.want) {
				t.Fatalf("Decompress without Record = %d bytes, %v; want %d bytes", len(plain), err, len(tt.want))
			}
			for _, viaWriteTo := range []bool{false, true} {
				s := &spillFiles{t: t}
				got, rec, err := zstdRecorded(t, blob, tt.c, tt.limit, s.spill, viaWriteTo)
				if err != nil || !bytes.Equal(got, tt.want) {
					t.Fatalf("Decompress with Record (WriteTo=%v) = %d bytes, %v; want %d bytes, first difference at %d",
						viaWriteTo, len(got), err, len(tt.want), firstDiff(got, tt.want))
				}
				m, err := rec.Map()
				if err != nil {
					t.Fatalf("Map() = %v", err)
				}
				if m.Access != tt.access {
					t.Fatalf("Map().Access = %v, want %v", m.Access, tt.access)
				}
				if m.Access == AccessZstdFrames && s.f != nil {
					if fi, err := s.f.Stat(); err != nil || fi.Size() != 0 {
						t.Errorf("spill file after a frames map: %v, %v; want it empty", fi.Size(), err)
					}
				}
				src, size := zstdMapSource(t, m, blob, s)
				n := reads
				if viaWriteTo {
					n /= 10
				}
				checkZstdMap(t, m, tt.want, src, size, n)
				if viaWriteTo {
					t.Logf("%v map, %d points; blob %d bytes, spill %d bytes, stream %d bytes", m.Access, len(m.Points), len(blob), size, m.Size)
				}
			}
		})
	}
}

// TestZstdRecordSpill covers the ways a spill can be missing or fail.
func TestZstdRecordSpill(t *testing.T) {
	data := layerLike(1<<20+300000, 12)
	frames := zstdFrames(t, data, 200000)
	single := zstdOneFrame(t, data, zstd.SpeedFastest)
	bz := runTool(t, data, "bzip2", "-c", "-1")
	errSpill := errors.New("no room")
	tests := []struct {
		name    string
		blob    []byte
		c       Compression
		s       *spillFiles // nil: Spill is nil
		wantErr error       // from Map; nil means a map
		wantAny bool        // any error but ErrNoMap
	}{
		{"frames without Spill", frames, Zstd, nil, nil, false},
		{"frames, Spill fails", frames, Zstd, &spillFiles{err: errSpill}, nil, false},
		{"frames, spill not writable", frames, Zstd, &spillFiles{ro: true}, nil, false},
		{"one frame without Spill", single, Zstd, nil, ErrNoMap, false},
		{"one frame, Spill fails", single, Zstd, &spillFiles{err: errSpill}, errSpill, false},
		{"one frame, spill not writable", single, Zstd, &spillFiles{ro: true}, nil, true},
		{"bzip2 without Spill", bz, Bzip2, nil, ErrNoMap, false},
		{"bzip2, Spill fails", bz, Bzip2, &spillFiles{err: errSpill}, errSpill, false},
		{"bzip2, spill not writable", bz, Bzip2, &spillFiles{ro: true}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var spill func() (*os.File, error)
			if tt.s != nil {
				tt.s.t = t
				spill = tt.s.spill
			}
			got, rec, err := zstdRecorded(t, tt.blob, tt.c, 1<<20, spill, false)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("Decompress = %d bytes, %v; want %d bytes: recording must not change the output", len(got), err, len(data))
			}
			m, err := rec.Map()
			switch {
			case tt.wantAny:
				if err == nil || errors.Is(err, ErrNoMap) {
					t.Fatalf("Map() = %v, want an error other than ErrNoMap", err)
				}
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Map() = %v, want %v", err, tt.wantErr)
				}
			default:
				if err != nil {
					t.Fatalf("Map() = %v", err)
				}
				checkZstdMap(t, m, data, bytes.NewReader(tt.blob), int64(len(tt.blob)), 20)
			}
			if err != nil {
				t.Logf("Map() = %v", err)
			}
		})
	}
}

// TestZstdRecordSameResult checks that recording changes neither the bytes nor the error
// of damaged streams, and that they get no map.
func TestZstdRecordSameResult(t *testing.T) {
	data := layerLike(600000, 13)
	frames := cat(zstdSkippableFrame("x"), zstdFrames(t, data, 100000))
	single := zstdFrames(t, data, len(data))
	flip := func(b []byte, i int) []byte {
		c := bytes.Clone(b)
		c[i] ^= 0x55
		return c
	}
	blobs := map[string][]byte{
		"frames, garbage after":         cat(frames, []byte("garbage")),
		"frames, zeros after":           cat(frames, make([]byte, 100)),
		"frames, half a magic after":    cat(frames, zstdMagic[:2]),
		"frames, a header after":        cat(frames, single[:6]),
		"frames, skippable cut":         cat(frames, zstdSkippableFrame("abcdef")[:10]),
		"frames, skippable header cut":  cat(frames, zstdSkippableFrame("abcdef")[:6]),
		"frames, flipped in a frame":    flip(frames, len(frames)/2),
		"frames, flipped block header":  flip(frames, len(zstdSkippableFrame("x"))+12),
		"frames, reserved header bit":   func() []byte { c := bytes.Clone(frames); c[len(zstdSkippableFrame("x"))+4] |= 8; return c }(),
		"frames, flipped checksum":      flip(frames, len(frames)-2),
		"one frame, flipped":            flip(single, 5000),
		"one frame, reserved block":     func() []byte { c := bytes.Clone(single); c[len(single)-4-3] |= 6; return c }(),
		"one frame, garbage after":      cat(single, []byte{1, 2, 3, 4, 5}),
		"window above the limit":        runTool(t, data, "zstd", "-c", "-q", "--long=30", "--zstd=wlog=30"),
		"skippable with a huge length":  cat(frames, []byte{0x50, 0x2a, 0x4d, 0x18, 0xff, 0xff, 0xff, 0x7f, 1}),
		"frame header with a dict id":   cat(frames, []byte{0x28, 0xb5, 0x2f, 0xfd, 0x03, 0x50, 1, 2, 3, 4, 1, 0, 0}),
		"frame content size mismatch":   func() []byte { c := bytes.Clone(single); c[5]++; return c }(),
		"only the header of a frame":    single[:6],
		"frames, last block cut":        frames[:len(frames)-10],
		"frames, cut after a block hdr": cat(frames, single[:9]),
	}
	step := 997
	if testing.Short() {
		step = 9973
	}
	for i := 1; i < len(frames); i += step {
		blobs[fmt.Sprintf("frames cut to %d", i)] = frames[:i]
	}
	for name, blob := range blobs {
		t.Run(name, func(t *testing.T) {
			opts := Options{MaxSize: 1 << 20}
			for _, viaWriteTo := range []bool{false, true} {
				rc, err := Decompress(bytes.NewReader(blob), Zstd, true, opts)
				var want []byte
				var wantErr error
				if err == nil {
					want, wantErr = readAllWith(rc, viaWriteTo)
					rc.Close()
				} else {
					wantErr = err
				}
				s := &spillFiles{t: t}
				rec := &Recorder{Spill: s.spill}
				rec.zs.limit = 150000
				opts.Record = rec
				rc, err = Decompress(bytes.NewReader(blob), Zstd, true, opts)
				opts.Record = nil
				var got []byte
				if err == nil {
					got, err = readAllWith(rc, viaWriteTo)
					rc.Close()
				}
				if !bytes.Equal(got, want) || fmt.Sprint(err) != fmt.Sprint(wantErr) {
					t.Fatalf("with Record (WriteTo=%v): %d bytes, %v; without: %d bytes, %v", viaWriteTo, len(got), err, len(want), wantErr)
				}
				if m, merr := rec.Map(); wantErr != nil && merr == nil {
					t.Fatalf("Map() of a stream that failed = %v map, no error", m.Access)
				}
				t.Logf("%d bytes, %v", len(got), err)
			}
		})
	}
}

// TestZstdRecordDeclaredSize checks that a frame whose header declares a size above the
// limit goes to the spill at once, without a verbatim copy to make and decode again.
func TestZstdRecordDeclaredSize(t *testing.T) {
	data := layerLike(1<<20+5000, 17)
	for _, tc := range []struct {
		name   string
		blob   []byte
		copied bool
	}{
		{"declared", cat(zstdFrames(t, data[:5000], 5000), zstdFrames(t, data[5000:], len(data))), false},
		{"not declared", cat(zstdFrames(t, data[:5000], 5000), zstdOneFrame(t, data[5000:], zstd.SpeedFastest)), true},
	} {
		s := &spillFiles{t: t}
		got, rec, err := zstdRecorded(t, tc.blob, Zstd, 1<<19, s.spill, false)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%s: Decompress = %d bytes, %v", tc.name, len(got), err)
		}
		m, err := rec.Map()
		if err != nil || m.Access != AccessSpill {
			t.Fatalf("%s: Map() = %v, %v; want a spill", tc.name, m, err)
		}
		// The first frame is copied either way; the second only when its size is unknown.
		if copied := rec.zs.copied > int64(len(zstdFrames(t, data[:5000], 5000))); copied != tc.copied {
			t.Errorf("%s: %d bytes copied verbatim; want the large frame copied: %v", tc.name, rec.zs.copied, tc.copied)
		}
		src, size := zstdMapSource(t, m, tc.blob, s)
		checkZstdMap(t, m, data, src, size, 50)
	}
}

// TestSpillSizeBound checks that a spill stays within spillMaxRatio times its blob for a
// stream that zstd compresses many times, where raw frames would take far more. (The bound
// is one the spill tries to keep: independent frames cannot always match the blob.)
func TestSpillSizeBound(t *testing.T) {
	var data []byte // 4 MB that compress about 20 times, redundancy within 4 KiB
	for b := range slices.Chunk(layerLike(500000, 18), 512) {
		for range 8 {
			data = append(data, b...)
		}
	}
	for _, blob := range [][]byte{zstdOneFrame(t, data, zstd.SpeedDefault), zstdFrames(t, data, len(data))} {
		s := &spillFiles{t: t}
		got, rec, err := zstdRecorded(t, blob, Zstd, 1<<20, s.spill, false)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("Decompress = %d bytes, %v", len(got), err)
		}
		m, err := rec.Map()
		if err != nil {
			t.Fatal(err)
		}
		fi, err := s.f.Stat()
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > spillMaxRatio*int64(len(blob)) {
			t.Errorf("spill of %d bytes for a blob of %d, more than %d times", fi.Size(), len(blob), spillMaxRatio)
		}
		t.Logf("%d bytes: blob %d, spill %d", len(data), len(blob), fi.Size())
		checkZstdMap(t, m, data, s.f, fi.Size(), 50)
	}
}

// TestZstdRecordClosedEarly checks that closing before the end stops the spill and gives
// no map.
func TestZstdRecordClosedEarly(t *testing.T) {
	data := layerLike(3<<20, 14)
	for _, blob := range [][]byte{zstdOneFrame(t, data, zstd.SpeedFastest), zstdFrames(t, data, 200000)} {
		s := &spillFiles{t: t}
		rec := &Recorder{Spill: s.spill}
		rec.zs.limit = 1 << 20
		rc, err := Decompress(bytes.NewReader(blob), Zstd, true, Options{Record: rec})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.CopyN(io.Discard, rc, 2<<20+5); err != nil {
			t.Fatal(err)
		}
		rc.Close()
		if _, err := rec.Map(); err == nil || !strings.Contains(err.Error(), "closed before its end") {
			t.Errorf("Map() after an early Close = %v, want an error saying so", err)
		}
	}
}

func TestOpenZstdAtDamaged(t *testing.T) {
	data := layerLike(300000, 15)
	blob := zstdFrames(t, data, 100000)
	tests := []struct {
		name string
		src  []byte
		in   int64
		want func(error) bool
	}{
		{"not a frame", blob, 3, func(err error) bool { return errors.As(err, new(*DecodeError)) }},
		{"cut", blob[:len(blob)/2], 0, func(err error) bool { return errors.Is(err, io.ErrUnexpectedEOF) }},
		{"flipped", func() []byte { c := bytes.Clone(blob); c[1000] ^= 1; return c }(), 0, func(err error) bool { return errors.As(err, new(*DecodeError)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc, err := openZstdAt(bytes.NewReader(tt.src), int64(len(tt.src)), Point{In: tt.in})
			if err == nil {
				_, err = io.Copy(io.Discard, rc)
				rc.Close()
			}
			if !tt.want(err) {
				t.Errorf("reading = %v (%T)", err, err)
			}
		})
	}
	if _, err := openZstdAt(bytes.NewReader(blob), int64(len(blob)), Point{In: int64(len(blob))}); err == nil {
		t.Error("openZstdAt past the end: no error")
	}
}
