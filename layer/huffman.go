package layer

import "math/bits"

// Decoding tables for the canonical Huffman codes of DEFLATE (RFC 1951).
//
// A table is indexed by the next tableBits bits of input (least significant
// bit first, as DEFLATE packs them). Codes longer than tableBits continue in
// a subtable, reached through a pointer entry and indexed by the bits after
// the first tableBits; its entries describe the whole code, so a decoder
// consumes bits the same way from either level. Each entry is a uint32:
//
//	bits  0-4   bits to consume: code length plus extra bits
//	bits  8-12  code length alone (pointer: index bits of the subtable)
//	bit   13    literal byte
//	bit   14    subtable pointer
//	bit   15    special: end of block (value 0) or invalid code (value 1)
//	bits 16-31  value: the literal, the length or distance base, the
//	            subtable's offset, or the code length symbol
//
// Storing code length and extra bits together lets the decoder read a
// length or distance as base + (bits & mask(total)) >> codelen and drop
// both with one shift.
const (
	entryTotal   = 0x1f
	entryLiteral = 1 << 13
	entrySub     = 1 << 14
	entrySpecial = 1 << 15

	entryEndOfBlock = entrySpecial
	entryInvalid    = entrySpecial | 1<<16

	maxCodeLen = 15

	litTableBits  = 11
	distTableBits = 8
	clenTableBits = 7 // code length codes are at most 7 bits: no subtables

	// Table sizes: the primary table plus the most subtable entries a
	// complete code can need. A subtable of 2^d entries needs at least d+1
	// codes below its prefix, so the 286 literal/length codes of a dynamic
	// block fill at most 57 subtables of 16 entries (d <= 15-11), and its
	// 30 distance codes at most three of 128 and one of 32. The fixed codes
	// need none.
	litTableSize  = 1<<litTableBits + 57*16
	distTableSize = 1<<distTableBits + 3*128 + 32
)

// Entry templates per symbol: value, flags and the number of extra bits
// (in bits 0-4, which makeEntry turns into the total).
var (
	litTemplates  [288]uint32
	distTemplates [32]uint32
	clenTemplates [19]uint32

	fixedLit  [litTableSize]uint32
	fixedDist [distTableSize]uint32
)

func init() {
	lengthBase := [29]uint32{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31,
		35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	lengthExtra := [29]uint32{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2,
		3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	distBase := [30]uint32{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193,
		257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	for s := range litTemplates {
		switch {
		case s < 256:
			litTemplates[s] = entryLiteral | uint32(s)<<16
		case s == 256:
			litTemplates[s] = entryEndOfBlock
		case s <= 285:
			litTemplates[s] = lengthBase[s-257]<<16 | lengthExtra[s-257]
		default:
			litTemplates[s] = entryInvalid // 286 and 287 take part in the fixed code but never occur
		}
	}
	for s := range distTemplates {
		if s < 30 {
			extra := uint32(max(s/2-1, 0))
			distTemplates[s] = distBase[s]<<16 | extra
		} else {
			distTemplates[s] = entryInvalid
		}
	}
	for s := range clenTemplates {
		clenTemplates[s] = uint32(s) << 16
	}

	var lengths [288]uint8
	for s := range lengths {
		switch {
		case s < 144:
			lengths[s] = 8
		case s < 256:
			lengths[s] = 9
		case s < 280:
			lengths[s] = 7
		default:
			lengths[s] = 8
		}
	}
	if !buildTable(fixedLit[:], litTableBits, lengths[:], litTemplates[:]) {
		panic("layer: fixed literal/length code")
	}
	for s := range lengths[:32] {
		lengths[s] = 5
	}
	if !buildTable(fixedDist[:], distTableBits, lengths[:32], distTemplates[:]) {
		panic("layer: fixed distance code")
	}
}

func makeEntry(template, codeLen uint32) uint32 {
	extra := template & entryTotal
	return template&^entryTotal | (codeLen + extra) | codeLen<<8
}

// buildTable fills table for the code with the given code lengths (one per
// symbol, 0 = unused). It reports false for a code that is over-subscribed
// or incomplete; like zlib and Go's compress/flate it accepts the one
// incomplete code DEFLATE needs, a single code of length 1, and an empty
// code (which then fails on first use).
func buildTable(table []uint32, tableBits uint, lengths []uint8, templates []uint32) bool {
	var count [maxCodeLen + 1]int
	maxLen := 0
	for _, l := range lengths {
		count[l]++
		maxLen = max(maxLen, int(l))
	}
	primary := table[:1<<tableBits]
	if maxLen == 0 {
		fillInvalid(primary)
		return true
	}
	count[0] = 0
	var next [maxCodeLen + 1]int
	code := 0
	for l := 1; l <= maxLen; l++ {
		code <<= 1
		next[l] = code
		code += count[l]
	}
	complete := code == 1<<maxLen
	if !complete && !(code == 1 && maxLen == 1) {
		return false
	}
	if !complete {
		fillInvalid(primary) // the one code of length 1 fills half
	}

	// Bit-reversed codes, and the depth of the subtable below each prefix
	// that has codes longer than tableBits.
	var codes [288]uint16
	var subBits [1 << litTableBits]uint8
	var prefixes [288]uint16
	nprefix := 0
	for s, l := range lengths {
		if l == 0 {
			continue
		}
		rev := bits.Reverse16(uint16(next[l])) >> (16 - l)
		next[l]++
		codes[s] = rev
		if uint(l) > tableBits {
			p := rev & (1<<tableBits - 1)
			if subBits[p] == 0 {
				prefixes[nprefix] = p
				nprefix++
			}
			subBits[p] = max(subBits[p], l-uint8(tableBits))
		}
	}
	pos := 1 << tableBits
	for _, p := range prefixes[:nprefix] {
		d := subBits[p]
		end := pos + 1<<d
		if end > len(table) {
			return false // cannot happen for a complete code; see the table sizes
		}
		primary[p] = entrySub | uint32(d)<<8 | uint32(pos)<<16
		pos = end
	}

	for s, l := range lengths {
		if l == 0 {
			continue
		}
		rev := uint(codes[s])
		if uint(l) <= tableBits {
			e := makeEntry(templates[s], uint32(l))
			for i := rev; i < 1<<tableBits; i += 1 << l {
				primary[i] = e
			}
			continue
		}
		ptr := primary[rev&(1<<tableBits-1)]
		start, d := uint(ptr>>16), uint(ptr>>8&0x1f)
		rest := uint(l) - tableBits
		e := makeEntry(templates[s], uint32(l))
		for i := rev >> tableBits; i < 1<<d; i += 1 << rest {
			table[start+i] = e
		}
	}
	return true
}

func fillInvalid(t []uint32) {
	for i := range t {
		t[i] = entryInvalid
	}
}
