package xzheader

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/ulikunitz/xz"
)

// streamHeader stands for the 12 bytes of an xz stream header, which are not read.
var streamHeader = []byte("\xfd7zXZ\x00\x00\x04\xe6\xd6\xb4\x46")

// block is a stream header and a first block header of flags and body, padded to a
// multiple of four and ended by a (zero, unchecked) CRC-32.
func block(flags byte, body ...byte) []byte {
	h := append([]byte{0, flags}, body...)
	for (len(h)+4)%4 != 0 {
		h = append(h, 0)
	}
	h = append(h, 0, 0, 0, 0)
	h[0] = byte(len(h)/4 - 1)
	return append(bytes.Clone(streamHeader), h...)
}

func goXz(t testing.TB, dict int) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := xz.WriterConfig{DictCap: dict}.NewWriter(&b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("hello, xz")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestFirstBlockFilters(t *testing.T) {
	lzma2 := func(dict uint64) Filter { return Filter{ID: LZMA2, Dict: dict} }
	for _, tc := range []struct {
		name   string
		stream []byte
		want   []Filter
		ok     bool
	}{
		{"lzma2 1 MiB", block(0, LZMA2, 1, 16), []Filter{lzma2(1 << 20)}, true},
		{"lzma2 1.5 MiB", block(0, LZMA2, 1, 17), []Filter{lzma2(3 << 19)}, true},
		{"lzma2 4 KiB", block(0, LZMA2, 1, 0), []Filter{lzma2(4 << 10)}, true},
		{"lzma2 largest", block(0, LZMA2, 1, 40), []Filter{lzma2(1<<32 - 1)}, true},
		{"lzma2 bad property", block(0, LZMA2, 1, 41), []Filter{lzma2(0)}, true},
		{"lzma2 long properties", block(0, LZMA2, 2, 16, 0), []Filter{lzma2(0)}, true},
		{"x86 then lzma2", block(1, 0x04, 0, LZMA2, 1, 20), []Filter{{ID: 0x04}, lzma2(4 << 20)}, true},
		{"delta with properties", block(1, 0x03, 1, 0, LZMA2, 1, 16), []Filter{{ID: 0x03}, lzma2(1 << 20)}, true},
		{"sizes before the filters", block(0xc0, 0x80, 0x01, 0x05, LZMA2, 1, 18), []Filter{lzma2(2 << 20)}, true},
		{"two-byte filter id", block(0, 0x81, 0x01, 0), []Filter{{ID: 0x81}}, true},
		{"second filter cut off", block(1, 0x04, 0)[:16], []Filter{{ID: 0x04}}, false},
		{"properties cut off", block(0, LZMA2, 5, 16)[:17], nil, false},
		{"size vli too long", block(0x40, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80), nil, false},
		{"index: no block", append(bytes.Clone(streamHeader), 0, 1, 0, 0), nil, false},
		{"stream header only", streamHeader, nil, false},
		{"empty", nil, nil, false},
		{"ulikunitz 1 MiB", goXz(t, 1<<20), []Filter{lzma2(1 << 20)}, true},
		{"ulikunitz 8 MiB", goXz(t, 8<<20), []Filter{lzma2(8 << 20)}, true},
	} {
		got, ok := FirstBlockFilters(tc.stream)
		if !reflect.DeepEqual(got, tc.want) || ok != tc.ok {
			t.Errorf("%s: FirstBlockFilters(% x) = %v, %v; want %v, %v", tc.name, tc.stream, got, ok, tc.want, tc.ok)
		}
	}
}

// FuzzFirstBlockFilters: whatever the bytes, no panic, at most the four filters a header
// can hold, and a dictionary only for LZMA2.
//
//	go test -run '^$' -fuzz FuzzFirstBlockFilters -fuzztime 1m ./internal/xzheader
func FuzzFirstBlockFilters(f *testing.F) {
	f.Add(block(1, 0x04, 0, LZMA2, 1, 20))
	f.Add(block(0xc3, 0x80, 0x01, 0x05, 0x03, 1, 0, 0x04, 0, 0x08, 0, LZMA2, 1, 40))
	f.Add(goXz(f, 1<<20))
	f.Fuzz(func(t *testing.T, stream []byte) {
		filters, _ := FirstBlockFilters(stream)
		if len(filters) > 4 {
			t.Fatalf("%d filters, a header holds at most 4", len(filters))
		}
		for _, x := range filters {
			if x.Dict != 0 && x.ID != LZMA2 {
				t.Fatalf("filter %#x with a dictionary of %d", x.ID, x.Dict)
			}
			if x.Dict > 1<<32-1 {
				t.Fatalf("dictionary of %d bytes", x.Dict)
			}
		}
	})
}
