package layer

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/ulikunitz/xz"

	"github.com/ocirender/ocirender/internal/xzheader"
)

// xzReader reads xz streams with github.com/ulikunitz/xz, and adds a check
// that the library lacks: in v0.5.17 a stream cut off at a block boundary,
// or inside a block header, ends with io.EOF as if it were complete. A
// complete input ends with a stream footer, possibly followed by stream
// padding (zero bytes, a multiple of four), so at the end the last bytes
// read from the input must be a valid footer.
type xzReader struct {
	r    *xz.Reader
	tail *xzTail
}

func newXzReader(br *bufio.Reader, src *inputReader, head []byte, dictLimit uint64) (*xzReader, error) {
	if err := checkXzDict(head, dictLimit); err != nil {
		return nil, err
	}
	// What bufio has read ahead (the peeked head) is input already seen.
	tail := new(xzTail)
	buffered, _ := br.Peek(br.Buffered())
	tail.write(buffered)
	src.tail = tail
	r, err := xz.NewReader(br)
	if err != nil {
		return nil, err
	}
	return &xzReader{r: r, tail: tail}, nil
}

func (x *xzReader) Read(p []byte) (int, error) {
	n, err := x.r.Read(p)
	if err == io.EOF && !x.tail.complete() {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// xzTail keeps the last bytes of the input before any trailing zeros.
type xzTail struct {
	last        [xzFooterLen]byte // the last bytes of the input
	beforeZeros [xzFooterLen]byte // the last bytes up to the last non-zero byte
	zeros       int64             // zero bytes since the last non-zero byte
}

const xzFooterLen = 12

func (t *xzTail) write(p []byte) {
	k := len(p) - 1
	for k >= 0 && p[k] == 0 {
		k--
	}
	if k >= 0 {
		t.beforeZeros = shiftIn(t.last, p[:k+1])
		t.zeros = int64(len(p) - 1 - k)
	} else {
		t.zeros += int64(len(p))
	}
	t.last = shiftIn(t.last, p)
}

func shiftIn(w [xzFooterLen]byte, p []byte) [xzFooterLen]byte {
	if len(p) >= xzFooterLen {
		return [xzFooterLen]byte(p[len(p)-xzFooterLen:])
	}
	copy(w[:], w[len(p):])
	copy(w[xzFooterLen-len(p):], p)
	return w
}

// complete reports whether the input ended with a stream footer (CRC-32 of
// the backward size and flags, then "YZ") and valid stream padding.
func (t *xzTail) complete() bool {
	f := t.beforeZeros
	return t.zeros%4 == 0 && f[10] == 'Y' && f[11] == 'Z' &&
		binary.LittleEndian.Uint32(f[:4]) == crc32.ChecksumIEEE(f[4:10])
}

// checkXzDict rejects an xz stream whose first block declares an LZMA2
// dictionary above limit, before the decoder allocates it. Later blocks are
// not checked; the dictionary is a ring whose pages are only touched as
// output is produced, so their cost stays bounded by MaxSize.
func checkXzDict(head []byte, limit uint64) error {
	filters, _ := xzheader.FirstBlockFilters(head)
	for _, f := range filters {
		if f.Dict > limit {
			return &xzDictError{dict: f.Dict, limit: limit}
		}
	}
	return nil
}

// xzDictError reports an xz dictionary above the memory limit.
type xzDictError struct{ dict, limit uint64 }

func (e *xzDictError) Error() string {
	return fmt.Sprintf("layer: xz stream needs a dictionary of %d MiB, above the limit of %d MiB", e.dict>>20, e.limit>>20)
}
