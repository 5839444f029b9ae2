package assembly

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"
)

func TestReadahead(t *testing.T) {
	data := make([]byte, 1<<20+123)
	for i := range data {
		data[i] = byte(rand.IntN(256))
	}
	for _, chunk := range []int{7, 4096, 1 << 20} {
		ra := newReadahead(iotest.HalfReader(bytes.NewReader(data)), chunk, 3)
		got, err := io.ReadAll(iotest.OneByteReader(io.LimitReader(ra, 100)))
		if err != nil {
			t.Fatal(err)
		}
		rest, err := io.ReadAll(ra)
		if err != nil || !bytes.Equal(append(got, rest...), data) {
			t.Errorf("chunk %d: read %d bytes (err %v), want the %d bytes written", chunk, len(got)+len(rest), err, len(data))
		}
		ra.Close()
	}
	boom := errors.New("boom")
	ra := newReadahead(io.MultiReader(bytes.NewReader(data[:10]), iotest.ErrReader(boom)), 4, 2)
	if b, err := io.ReadAll(ra); !errors.Is(err, boom) || !bytes.Equal(b, data[:10]) {
		t.Errorf("ReadAll = %d bytes, %v; want 10 bytes then boom", len(b), err)
	}
	// Close while the filler is blocked must not leak or hang.
	ra = newReadahead(bytes.NewReader(data), 1024, 1)
	ra.Close()
}
