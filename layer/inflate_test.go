package layer

import (
	"bytes"
	stdflate "compress/flate"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/flate"
)

func deflateWith(t testing.TB, data []byte, level, flushEvery int) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := flate.NewWriter(&b, level)
	if err != nil {
		t.Fatal(err)
	}
	writeFlushing(t, w, data, flushEvery)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func stdDeflateWith(t testing.TB, data []byte, level int) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := stdflate.NewWriter(&b, level)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	w.Close()
	return b.Bytes()
}

// periodic returns n bytes repeating a pattern of the given period, so
// that matches have short distances.
func periodic(n, period int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + i%period)
	}
	return b
}

// stdInflate is the oracle: Go's compress/flate, which reads exactly the
// DEFLATE stream and no byte more.
func stdInflate(data []byte) ([]byte, int64, error) {
	br := bytes.NewReader(data)
	got, err := io.ReadAll(stdflate.NewReader(br))
	return got, int64(len(data) - br.Len()), err
}

func TestInflateMatchesOracle(t *testing.T) {
	size, zeros := 3<<20, 5<<20
	if testing.Short() {
		size, zeros = 512<<10, 1<<20 // make test runs every package under -race -short
	}
	text := layerLike(size, 11)
	farMatch := append(layerLike(40000, 12), layerLike(40000, 12)...) // repeats at distance 40000 > 32K: literals
	window := append(periodic(32768, 251), periodic(32768, 251)...)   // distance exactly 32768 is legal
	tests := []struct {
		name string
		data []byte
		make func(t *testing.T, data []byte) []byte
	}{
		{"level 6", text, func(t *testing.T, d []byte) []byte { return deflateWith(t, d, 6, 0) }},
		{"level 1", text, func(t *testing.T, d []byte) []byte { return deflateWith(t, d, 1, 0) }},
		{"level 9", text, func(t *testing.T, d []byte) []byte { return deflateWith(t, d, 9, 0) }},
		{"stored", text, func(t *testing.T, d []byte) []byte { return deflateWith(t, d, 0, 0) }},
		{"huffman only", text, func(t *testing.T, d []byte) []byte { return deflateWith(t, d, flate.HuffmanOnly, 0) }},
		{"flushes", text, func(t *testing.T, d []byte) []byte { return deflateWith(t, d, 6, 20000) }},
		{"stdlib level 6", text, func(t *testing.T, d []byte) []byte { return stdDeflateWith(t, d, 6) }},
		{"stdlib level 1", text, func(t *testing.T, d []byte) []byte { return stdDeflateWith(t, d, 1) }},
		{"stdlib huffman only", text, func(t *testing.T, d []byte) []byte { return stdDeflateWith(t, d, stdflate.HuffmanOnly) }},
		{"empty", nil, func(t *testing.T, d []byte) []byte { return deflateWith(t, d, 6, 0) }},
		{"one byte", []byte{42}, func(t *testing.T, d []byte) []byte { return stdDeflateWith(t, d, 6) }},
		{"far repeat", farMatch, func(t *testing.T, d []byte) []byte { return stdDeflateWith(t, d, 9) }},
		{"window-sized distance", window, func(t *testing.T, d []byte) []byte { return stdDeflateWith(t, d, 9) }},
		{"zeros", make([]byte, zeros), func(t *testing.T, d []byte) []byte { return deflateWith(t, d, 6, 0) }},
	}
	for period := 1; period <= 17; period++ {
		tests = append(tests, struct {
			name string
			data []byte
			make func(t *testing.T, data []byte) []byte
		}{"period " + strings.Repeat("+", period), periodic(100000+period, period), func(t *testing.T, d []byte) []byte { return stdDeflateWith(t, d, 9) }})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stream := tt.make(t, tt.data)
			withTrailer := cat(stream, []byte("trailing bytes"))
			got, n, err := rawInflate(withTrailer)
			if err != nil {
				t.Fatalf("rawInflate = %v", err)
			}
			if !bytes.Equal(got, tt.data) {
				t.Fatalf("rawInflate = %d bytes, want %d, first difference at %d", len(got), len(tt.data), firstDiff(got, tt.data))
			}
			if n != int64(len(stream)) {
				t.Errorf("rawInflate consumed %d bytes, want %d", n, len(stream))
			}
		})
	}
}

func TestInflateErrors(t *testing.T) {
	valid := stdDeflateWith(t, layerLike(100000, 13), 6)
	tests := []struct {
		name   string
		stream []byte
		want   string
	}{
		{"block type 3", []byte{0x07, 0, 0}, "invalid block type"},
		{"stored length complement", []byte{0x01, 5, 0, 5, 0, 'h', 'e', 'l', 'l', 'o'}, "stored block length"},
		{"stored short", []byte{0x01, 5, 0, 0xfa, 0xff, 'h', 'e'}, "unexpected EOF"},
		{"empty", nil, "unexpected EOF"},
		{"distance too far", farDistance(), "distance too far back"},
		{"truncated", valid[:len(valid)/2], "unexpected EOF"},
		{"truncated by one", valid[:len(valid)-1], "unexpected EOF"},
		{"no final block", []byte{0x00, 0, 0, 0xff, 0xff}, "unexpected EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := rawInflate(tt.stream)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("rawInflate error = %v, want one containing %q", err, tt.want)
			}
			if _, _, stdErr := stdInflate(tt.stream); stdErr == nil {
				t.Errorf("the oracle accepts this stream")
			}
		})
	}
}

// farDistance is a fixed-Huffman block with one literal and then a match
// at distance 2, reaching before the start of the stream.
func farDistance() []byte {
	var w bitWriter
	w.bits(1, 1) // final
	w.bits(1, 2) // fixed Huffman
	w.code(0x30+'a', 8)
	w.code(1, 7)     // length symbol 257: length 3
	w.code(1, 5)     // distance symbol 1: distance 2
	w.code(0, 7)     // end of block
	return w.flush() // 'a' then a match 2 back: only 1 byte of history
}

// bitWriter assembles DEFLATE streams by hand.
type bitWriter struct {
	out []byte
	acc uint64
	n   uint
}

func (w *bitWriter) bits(v uint64, n uint) {
	w.acc |= v << w.n
	w.n += n
	for w.n >= 8 {
		w.out = append(w.out, byte(w.acc))
		w.acc >>= 8
		w.n -= 8
	}
}

// code writes a Huffman code, most significant bit first.
func (w *bitWriter) code(c uint64, n uint) {
	for i := int(n) - 1; i >= 0; i-- {
		w.bits(c>>uint(i)&1, 1)
	}
}

func (w *bitWriter) flush() []byte {
	if w.n > 0 {
		w.out = append(w.out, byte(w.acc))
	}
	return w.out
}

func TestInflateDegenerateCodes(t *testing.T) {
	// A dynamic block whose distance code has a single code of length 1,
	// the one incomplete code DEFLATE allows (zlib makes these).
	var w bitWriter
	w.bits(1, 1)  // final
	w.bits(2, 2)  // dynamic
	w.bits(0, 5)  // 257 literal/length codes
	w.bits(0, 5)  // 1 distance code
	w.bits(14, 4) // 18 code length codes, in clenOrder
	// Code length code lengths: symbols 18 and 1 and 2 get length 2, 0 gets 2.
	clens := map[int]uint64{18: 2, 0: 2, 1: 2, 2: 2}
	for _, s := range clenOrder[:18] {
		w.bits(clens[int(s)], 3)
	}
	// Canonical codes for lengths 2: symbols 0,1,2,18 -> 00,01,10,11.
	// Literal/length lengths: 'a' (97) and 256 get 1 bit; others 0.
	w.code(3, 2)
	w.bits(97-11, 7) // 97 zeros
	w.code(1, 2)     // 'a': length 1
	w.code(3, 2)
	w.bits(138-11, 7) // 138 zeros
	w.code(3, 2)
	w.bits(20-11, 7) // 20 zeros: up to 255
	w.code(1, 2)     // 256: length 1
	w.code(1, 2)     // distance 0: length 1
	// Data: 'a' is code 0, end of block is code 1.
	w.code(0, 1)
	w.code(0, 1)
	w.code(1, 1)
	stream := w.flush()
	want, _, err := stdInflate(stream)
	if err != nil {
		t.Fatalf("the oracle rejects the hand-made stream: %v", err)
	}
	got, _, err := rawInflate(stream)
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("rawInflate = %q, %v; want %q", got, err, want)
	}
}

func TestInflateCorruptErrorOffset(t *testing.T) {
	_, _, err := rawInflate([]byte{0x07, 0, 0})
	var ce *corruptError
	if !errors.As(err, &ce) {
		t.Fatalf("rawInflate error %v (%T), want a *corruptError", err, err)
	}
	if want := "invalid block type at compressed byte 0"; err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
}

// FuzzInflate checks the inflater against compress/flate on arbitrary
// input: the same output, or an error from both.
func FuzzInflate(f *testing.F) {
	f.Add(stdDeflateWith(f, []byte("hello, hello, hello world"), 6))
	f.Add(stdDeflateWith(f, layerLike(3000, 14), 1))
	f.Add(deflateWith(f, layerLike(3000, 15), 0, 1000))
	f.Add(deflateWith(f, periodic(5000, 3), flate.HuffmanOnly, 0))
	f.Add(farDistance())
	f.Add([]byte{0x01, 0, 0, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, stream []byte) {
		// A hang would stall the fuzzer silently; make it a crash with the input.
		hang := time.AfterFunc(10*time.Second, func() { panic(fmt.Sprintf("rawInflate hangs on %x", stream)) })
		defer hang.Stop()
		want, wantN, wantErr := stdInflate(stream)
		got, n, err := rawInflate(stream)
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("rawInflate error = %v, oracle error = %v", err, wantErr)
		}
		if err != nil {
			return
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("rawInflate = %d bytes, oracle %d, first difference at %d", len(got), len(want), firstDiff(got, want))
		}
		if n != wantN {
			t.Fatalf("rawInflate consumed %d bytes, oracle %d", n, wantN)
		}
	})
}

// TestBuildTable decodes every symbol of random complete codes, many with
// long codes that need subtables, through the tables buildTable makes.
func TestBuildTable(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for trial := range 2000 {
		nsym, tableBits, templates := 286, uint(litTableBits), litTemplates[:286]
		table := make([]uint32, litTableSize)
		if trial%2 == 1 {
			nsym, tableBits, templates = 30, distTableBits, distTemplates[:30]
			table = make([]uint32, distTableSize)
		}
		lengths := randomCompleteCode(rng, nsym, 2+rng.IntN(nsym-1))
		if !buildTable(table, tableBits, lengths, templates) {
			t.Fatalf("buildTable(%v) = false for a complete code", lengths)
		}
		// Walk the canonical codes and look each one up.
		var count, next [maxCodeLen + 2]int
		for _, l := range lengths {
			count[l]++
		}
		count[0] = 0
		for l, code := 1, 0; l <= maxCodeLen; l++ {
			code = (code + count[l-1]) << 1
			next[l] = code
		}
		for s, l := range lengths {
			if l == 0 {
				continue
			}
			rev := uint64(reverseBits(next[l], int(l)))
			next[l]++
			e := table[rev&(1<<tableBits-1)]
			if e&entrySub != 0 {
				e = table[e>>16+uint32(rev>>tableBits)&(1<<(e>>8&0x1f)-1)]
			}
			want := makeEntry(templates[s], uint32(l))
			if e != want {
				t.Fatalf("trial %d: symbol %d (length %d) decodes to entry %#x, want %#x", trial, s, l, e, want)
			}
		}
	}
}

func reverseBits(v, n int) int {
	r := 0
	for range n {
		r = r<<1 | v&1
		v >>= 1
	}
	return r
}

// randomCompleteCode returns code lengths (at most 15) for n of nsym
// symbols that form a complete prefix code, made by splitting leaves of a
// binary tree, deep ones preferred so that subtables are needed.
func randomCompleteCode(rng *rand.Rand, nsym, n int) []uint8 {
	depths := []uint8{0}
	for len(depths) < n {
		i := rng.IntN(len(depths))
		for range 3 { // prefer deeper leaves
			if j := rng.IntN(len(depths)); depths[j] > depths[i] && depths[j] < maxCodeLen {
				i = j
			}
		}
		if depths[i] == maxCodeLen {
			continue
		}
		depths[i]++
		depths = append(depths, depths[i])
	}
	lengths := make([]uint8, nsym)
	for i, s := range rng.Perm(nsym)[:n] {
		lengths[s] = depths[i]
	}
	return lengths
}
