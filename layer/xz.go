package layer

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/ulikunitz/xz"
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
	filters, _ := XzFirstBlockFilters(head)
	for _, f := range filters {
		if f.Dict > limit {
			return &xzDictError{dict: f.Dict, limit: limit}
		}
	}
	return nil
}

// XzLZMA2 is the filter ID of LZMA2 in an xz block header.
const XzLZMA2 = 0x21

// XzFilter is one filter of an xz block header.
type XzFilter struct {
	ID   uint64
	Dict uint64 // LZMA2: the dictionary size its properties declare; 0 otherwise
}

// XzFirstBlockFilters reads the filter chain of the first block header of the
// xz stream that starts at stream, without decoding anything: what to refuse
// (a huge dictionary, an unsupported filter) before a decoder allocates. It
// returns the filters it could read; ok is false when the header is too short
// or malformed to read whole (the decoder then says what is wrong), or when
// the stream has no block.
func XzFirstBlockFilters(stream []byte) (filters []XzFilter, ok bool) {
	// Stream header (12 bytes), then the first block header: size byte,
	// flags (filter count - 1 in bits 0-1; bits 6, 7 announce two VLIs), the
	// optional VLIs, then each filter: ID VLI, properties size VLI, properties.
	const streamHeaderLen = 12
	p := stream[min(len(stream), streamHeaderLen):]
	if len(p) < 2 || p[0] == 0 { // too short to tell, or an index: no block
		return nil, false
	}
	p = p[:min(len(p), (int(p[0])+1)*4)]
	flags := p[1]
	p = p[2:]
	vli := func() (uint64, bool) {
		var v uint64
		for i := 0; i < 9 && i < len(p); i++ {
			v |= uint64(p[i]&0x7f) << (7 * i)
			if p[i]&0x80 == 0 {
				p = p[i+1:]
				return v, true
			}
		}
		return 0, false
	}
	for _, bit := range []byte{0x40, 0x80} {
		if flags&bit != 0 {
			if _, ok := vli(); !ok {
				return nil, false
			}
		}
	}
	for range int(flags&3) + 1 {
		id, ok1 := vli()
		size, ok2 := vli()
		if !ok1 || !ok2 || uint64(len(p)) < size {
			return filters, false
		}
		f := XzFilter{ID: id}
		if id == XzLZMA2 && size == 1 && p[0] <= 40 {
			f.Dict = uint64(2|p[0]&1) << (p[0]/2 + 11)
			if p[0] == 40 {
				f.Dict = 1<<32 - 1
			}
		}
		filters = append(filters, f)
		p = p[size:]
	}
	return filters, true
}

// xzDictError reports an xz dictionary above the memory limit.
type xzDictError struct{ dict, limit uint64 }

func (e *xzDictError) Error() string {
	return fmt.Sprintf("layer: xz stream needs a dictionary of %d MiB, above the limit of %d MiB", e.dict>>20, e.limit>>20)
}
