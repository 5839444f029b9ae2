package squashfs

import (
	"bytes"
	"errors"
	"testing"

	"github.com/pierrec/lz4/v4"
)

// TestLZ4Limit: a block decodes to at most limit bytes, whatever it says; an empty or cut
// block is corrupt.
func TestLZ4Limit(t *testing.T) {
	plain := bytes.Repeat([]byte("squashfs lz4 "), 700) // 9100 bytes
	block := make([]byte, lz4.CompressBlockBound(len(plain)))
	n, err := new(lz4.Compressor).CompressBlock(plain, block)
	if err != nil || n == 0 || n >= len(plain) {
		t.Fatalf("CompressBlock = %d, %v; want a smaller block", n, err)
	}
	block = block[:n]
	for _, tc := range []struct {
		name  string
		src   []byte
		limit int
		ok    bool
	}{
		{"fits", block, len(plain), true},
		{"room to spare", block, 1 << 20, true},
		{"one byte over", block, len(plain) - 1, false},
		{"metadata limit", block, metaSize, false},
		{"empty", nil, metaSize, false},
		{"cut", block[:n/2], 1 << 20, false},
	} {
		got, err := lz4Decompressor{}.decompress(nil, tc.src, tc.limit)
		switch {
		case tc.ok && (err != nil || !bytes.Equal(got, plain)):
			t.Errorf("%s: decompress = %d bytes, %v; want the %d bytes compressed", tc.name, len(got), err, len(plain))
		case !tc.ok && !errors.Is(err, ErrCorrupt):
			t.Errorf("%s: decompress = %d bytes, %v; want ErrCorrupt", tc.name, len(got), err)
		}
	}
}
