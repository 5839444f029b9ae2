package layer

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// smallGzipMap is a valid gzip map with both kinds of points.
func smallGzipMap() *Map {
	return &Map{Access: AccessGzip, Size: 100, Points: []Point{{Out: 0, In: 0}, {Out: 10, In: 85, Window: []byte{1, 2}}, {Out: 20, In: 90, Window: []byte{3}}}}
}

// handMaps are maps of every kind, with the edge cases a Recorder makes.
func handMaps() []struct {
	name string
	m    *Map
} {
	w := func(n int) []byte { return bytes.Repeat([]byte{byte(n)}, n) }
	return []struct {
		name string
		m    *Map
	}{
		{"direct empty", &Map{Access: AccessDirect}},
		{"direct", &Map{Access: AccessDirect, Size: 1 << 40}},
		{"gzip empty", &Map{Access: AccessGzip, Points: []Point{{}}}},
		{"gzip small", smallGzipMap()},
		{"gzip", &Map{Access: AccessGzip, Size: 5 << 20, Points: []Point{
			{Out: 0, In: 0},
			{Out: 1 << 20, In: 8*1000 + 3, Window: w(9)},
			{Out: 2 << 20, In: 8 * 5000}, // a later member's header
			{Out: 3<<20 + 1, In: 8*9000 + 7, Window: w(maxMapWindow)},
			{Out: 5 << 20, In: 8*9000 + 7, Window: w(1)}, // the empty last block, at the end
		}}},
		{"zstd frames empty", &Map{Access: AccessZstdFrames}},
		{"zstd frames", &Map{Access: AccessZstdFrames, Size: 100, Points: []Point{{Out: 0, In: 4}, {Out: 50, In: 40}, {Out: 99, In: 41}}}},
		{"spill empty", &Map{Access: AccessSpill, Points: []Point{{}}}},
		{"spill", &Map{Access: AccessSpill, Size: 3 << 20, Points: []Point{{Out: 0, In: 0}, {Out: 1 << 20, In: 4096}, {Out: 2 << 20, In: 8192}}}},
	}
}

// recordedMaps are maps a Recorder made of real streams.
func recordedMaps(t *testing.T) []struct {
	name string
	m    *Map
} {
	rng := rand.New(rand.NewPCG(3, 4))
	data := make([]byte, 600_000)
	for i := range data {
		data[i] = "abcdefgh"[rng.IntN(8)]
	}
	var gz bytes.Buffer
	for _, part := range [][]byte{data[:200_000], data[200_000:]} { // two members
		w, err := gzip.NewWriterLevel(&gz, 6)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < len(part); i += 30_000 {
			w.Write(part[i:min(i+30_000, len(part))])
			w.Flush() // stored blocks
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	var frames []byte
	for i := 0; i < len(data); i += 100_000 {
		frames = enc.EncodeAll(data[i:min(i+100_000, len(data))], frames)
	}
	var xzBlob bytes.Buffer
	xw, err := xz.NewWriter(&xzBlob)
	if err != nil {
		t.Fatal(err)
	}
	xw.Write(data)
	if err := xw.Close(); err != nil {
		t.Fatal(err)
	}

	var out []struct {
		name string
		m    *Map
	}
	for _, s := range []struct {
		name string
		c    Compression
		blob []byte
	}{
		{"gzip", Gzip, gz.Bytes()},
		{"zstd frames", Zstd, frames},
		{"xz spill", Xz, xzBlob.Bytes()},
		{"uncompressed", Uncompressed, data},
	} {
		rec := &Recorder{Interval: 64 << 10, Spill: func() (*os.File, error) {
			return os.Create(filepath.Join(t.TempDir(), "spill"))
		}}
		rc, err := Decompress(bytes.NewReader(s.blob), s.c, true, Options{Record: rec, MaxSize: -1})
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		_, err = io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		m, err := rec.Map()
		if err != nil {
			t.Fatalf("%s: Map: %v", s.name, err)
		}
		out = append(out, struct {
			name string
			m    *Map
		}{"recorded " + s.name, m})
	}
	return out
}

func TestMapRoundTrip(t *testing.T) {
	for _, tc := range append(handMaps(), recordedMaps(t)...) {
		t.Run(tc.name, func(t *testing.T) {
			data, err := tc.m.MarshalBinary()
			if err != nil {
				t.Fatalf("MarshalBinary: %v", err)
			}
			got, err := UnmarshalMap(data)
			if err != nil {
				t.Fatalf("UnmarshalMap: %v", err)
			}
			want := *tc.m
			if len(want.Points) == 0 {
				want.Points = nil
			}
			if !reflect.DeepEqual(got, &want) {
				t.Fatalf("UnmarshalMap(MarshalBinary(%v)) = %v", tc.m, got)
			}
			t.Logf("%s map of %d bytes, %d points: %d bytes", tc.m.Access, tc.m.Size, len(tc.m.Points), len(data))

			// The map shares nothing with data, and no window with another.
			clear(data)
			for i := range got.Points {
				got.Points[i].Window = append(got.Points[i].Window, 0xee)
			}
			for i, p := range got.Points {
				if w := tc.m.Points[i].Window; w != nil && !bytes.Equal(p.Window[:len(p.Window)-1], w) {
					t.Fatalf("window %d changed when the data was cleared or another window appended to", i)
				}
			}

			again, err := tc.m.AppendBinary([]byte("prefix"))
			if data, _ = tc.m.MarshalBinary(); err != nil || string(again[:6]) != "prefix" || !bytes.Equal(again[6:], data) {
				t.Errorf("AppendBinary(prefix) = %d bytes, %v; want prefix and the %d bytes encoded", len(again), err, len(data))
			}
		})
	}
}

func TestMapCorrupt(t *testing.T) {
	// Maps that break a rule, written out as they are.
	for _, tc := range []struct {
		name   string
		damage func(m *Map)
	}{
		{"access 0", func(m *Map) { m.Access = 0 }},
		{"access 5", func(m *Map) { m.Access = AccessSpill + 1 }},
		{"negative size", func(m *Map) { m.Size = -1 }},
		{"direct with points", func(m *Map) { m.Access, m.Points = AccessDirect, m.Points[:1] }},
		{"no points", func(m *Map) { m.Points = nil }},
		{"first point not at 0", func(m *Map) { m.Points[0].Out = 1 }},
		{"points out of order", func(m *Map) { m.Points[1].Out, m.Points[2].Out = 20, 10 }},
		{"two points at one offset", func(m *Map) { m.Points[2].Out = 10 }},
		{"point past the end", func(m *Map) { m.Size = 19 }},
		{"negative input offset", func(m *Map) { m.Points[0].In = -8 }},
		{"input offsets decreasing", func(m *Map) { m.Points[2].In = 84 }},
		{"window in a zstd map", func(m *Map) { m.Access = AccessZstdFrames }},
		{"window in a spill map", func(m *Map) { m.Access = AccessSpill }},
		{"window too large", func(m *Map) { m.Points[1].Window = make([]byte, maxMapWindow+1) }},
		{"member header inside a byte", func(m *Map) { m.Points[1].Window = nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := smallGzipMap()
			tc.damage(m)
			data := m.appendEncoding(nil)
			if got, err := UnmarshalMap(data); !errors.Is(err, ErrCorruptMap) {
				t.Errorf("UnmarshalMap = %v, %v; want %v", got, err, ErrCorruptMap)
			} else {
				t.Log(err)
			}
			if _, err := m.MarshalBinary(); err == nil {
				t.Errorf("MarshalBinary of the damaged map succeeded")
			}
		})
	}
	t.Run("empty window", func(t *testing.T) {
		m := smallGzipMap()
		m.Points[1].Window = []byte{}
		if _, err := m.MarshalBinary(); err == nil {
			t.Errorf("MarshalBinary of a map with an empty window that is not nil succeeded")
		}
	})

	// Damaged bytes.
	valid, err := smallGzipMap().MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	count := len(mapMagic) + 16
	for _, tc := range []struct {
		name   string
		damage func(b []byte) []byte
	}{
		{"empty", func(b []byte) []byte { return nil }},
		{"magic", func(b []byte) []byte { b[1] = 'C'; return b }},
		{"version", func(b []byte) []byte { le.PutUint32(b[len(mapMagic):], 0); return b }},
		{"padding", func(b []byte) []byte { b[len(mapMagic)+6] = 1; return b }},
		{"huge point count", func(b []byte) []byte { le.PutUint32(b[count:], 0xffffffff); return b }},
		{"one point more", func(b []byte) []byte { le.PutUint32(b[count:], 4); return b }},
		{"one point less", func(b []byte) []byte { le.PutUint32(b[count:], 2); return b }},
		{"huge window", func(b []byte) []byte { le.PutUint32(b[mapHeaderLen+pointLen+16:], 0xffffffff); return b }},
		{"trailing byte", func(b []byte) []byte { return append(b, 0) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := tc.damage(slices.Clone(valid))
			if got, err := UnmarshalMap(data); !errors.Is(err, ErrCorruptMap) {
				t.Errorf("UnmarshalMap = %v, %v; want %v", got, err, ErrCorruptMap)
			} else {
				t.Log(err)
			}
		})
	}
	for n := range len(valid) {
		if got, err := UnmarshalMap(valid[:n]); !errors.Is(err, ErrCorruptMap) {
			t.Errorf("UnmarshalMap(first %d of %d bytes) = %v, %v; want %v", n, len(valid), got, err, ErrCorruptMap)
		}
	}
}

// TestMapFlipped damages every byte of the encodings of the hand-made maps in a few ways:
// each result must be refused or decode to a valid map.
func TestMapFlipped(t *testing.T) {
	accepted, total := 0, 0
	for _, tc := range handMaps() {
		data, err := tc.m.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if len(data) > 1000 {
			continue
		}
		for i := range data {
			for _, mask := range []byte{0x01, 0x08, 0x80, 0xff} {
				d := slices.Clone(data)
				d[i] ^= mask
				total++
				if checkDecodedMap(t, d) {
					accepted++
				}
			}
		}
	}
	t.Logf("%d of %d damaged encodings decode", accepted, total)
}

// checkDecodedMap decodes data and reports whether it decoded. A map that decodes must be
// valid and re-encode to data.
func checkDecodedMap(t *testing.T, data []byte) bool {
	t.Helper()
	m, err := UnmarshalMap(data)
	if err != nil {
		if !errors.Is(err, ErrCorruptMap) {
			t.Fatalf("UnmarshalMap error %v does not wrap ErrCorruptMap", err)
		}
		return false
	}
	if err := m.validate(); err != nil {
		t.Fatalf("UnmarshalMap returned an invalid map: %v", err)
	}
	if again, err := m.MarshalBinary(); err != nil || !bytes.Equal(again, data) {
		t.Fatalf("re-encoding a decoded map = %d bytes, %v; want the %d bytes it came from", len(again), err, len(data))
	}
	return true
}

func FuzzUnmarshalMap(f *testing.F) {
	for _, tc := range handMaps() {
		data, err := tc.m.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		if len(data) < 4096 {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDecodedMap(t, data)
	})
}
