// Package xzheader reads the filter chain of the first block header of an xz stream,
// without decoding anything, for the two readers of xz data: package layer (xz layers) and
// package squashfs (xz blocks). Both look at it to refuse what they will not decode, a huge
// dictionary or a filter they do not support, before a decoder allocates.
//
// It checks no CRC and does not validate the stream: a header too short or malformed to
// read is reported as such, and what is wrong with it is left to the decoder to say.
package xzheader

// LZMA2 is the filter ID of LZMA2 in an xz block header.
const LZMA2 = 0x21

// Filter is one filter of an xz block header.
type Filter struct {
	ID   uint64
	Dict uint64 // LZMA2: the dictionary size its properties declare; 0 otherwise
}

// FirstBlockFilters reads the filter chain of the first block header of the
// xz stream that starts at stream, without decoding anything: what to refuse
// (a huge dictionary, an unsupported filter) before a decoder allocates. It
// returns the filters it could read; ok is false when the header is too short
// or malformed to read whole (the decoder then says what is wrong), or when
// the stream has no block.
func FirstBlockFilters(stream []byte) (filters []Filter, ok bool) {
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
		f := Filter{ID: id}
		if id == LZMA2 && size == 1 && p[0] <= 40 {
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
