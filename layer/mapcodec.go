package layer

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
)

// The binary encoding of a Map, which the index cache keeps next to the merged index.
//
// Version 1, every integer little-endian:
//
//	header   "ocr-map\n" | u32 version | u8 access | 3 zero bytes | i64 size | u32 points
//	points   20 bytes each: i64 out | i64 in | u32 window length
//	windows  the windows of the points, in order
//
// A nil Window is written with length 0 (a compressed window is never empty, and MarshalBinary
// refuses an empty one that is not nil), so a Map has exactly one encoding and the header
// and the window lengths fix the length of the data.
//
// UnmarshalMap trusts nothing: the data may be truncated or damaged on disk. It checks the
// number of points against the length of the data before allocating, and the decoded Map
// against the rules validate lists; MarshalBinary refuses a Map that breaks them.

const (
	mapMagic     = "ocr-map\n"
	mapVersion   = 1
	mapHeaderLen = len(mapMagic) + 4 + 4 + 8 + 4
	pointLen     = 20
)

// maxMapWindow is the largest compressed gzip window a Map may hold: twice the 32 KiB it
// compresses, which zstd never comes near.
const maxMapWindow = 64 << 10

// ErrCorruptMap is returned by UnmarshalMap for data that is not a valid encoded Map.
var ErrCorruptMap = errors.New("layer: corrupt map encoding")

// MarshalBinary encodes the map (see AppendBinary).
func (m *Map) MarshalBinary() ([]byte, error) {
	return m.AppendBinary(nil)
}

// AppendBinary appends the encoding of the map to b. It fails for a map that UnmarshalMap
// would reject.
func (m *Map) AppendBinary(b []byte) ([]byte, error) {
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("layer: cannot encode map: %w", err)
	}
	return m.appendEncoding(b), nil
}

// appendEncoding appends the encoding of m as it is, valid or not.
func (m *Map) appendEncoding(b []byte) []byte {
	size := mapHeaderLen + pointLen*len(m.Points)
	for _, p := range m.Points {
		size += len(p.Window)
	}
	b = slices.Grow(b, size)
	le := binary.LittleEndian
	b = append(b, mapMagic...)
	b = le.AppendUint32(b, mapVersion)
	b = append(b, byte(m.Access), 0, 0, 0)
	b = le.AppendUint64(b, uint64(m.Size))
	b = le.AppendUint32(b, uint32(len(m.Points)))
	for _, p := range m.Points {
		b = le.AppendUint64(b, uint64(p.Out))
		b = le.AppendUint64(b, uint64(p.In))
		b = le.AppendUint32(b, uint32(len(p.Window)))
	}
	for _, p := range m.Points {
		b = append(b, p.Window...)
	}
	return b
}

// UnmarshalMap decodes a map written by MarshalBinary. It does not retain data. Data that is
// not such an encoding (truncated, damaged, of another version) fails with an error wrapping
// ErrCorruptMap.
func UnmarshalMap(data []byte) (*Map, error) {
	m, err := decodeMap(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorruptMap, err)
	}
	return m, nil
}

func decodeMap(data []byte) (*Map, error) {
	if len(data) < mapHeaderLen {
		return nil, fmt.Errorf("%d bytes, shorter than the header", len(data))
	}
	if string(data[:len(mapMagic)]) != mapMagic {
		return nil, errors.New("not an encoded map")
	}
	le := binary.LittleEndian
	h := data[len(mapMagic):mapHeaderLen]
	if v := le.Uint32(h); v != mapVersion {
		return nil, fmt.Errorf("format version %d, want %d", v, mapVersion)
	}
	if h[5] != 0 || h[6] != 0 || h[7] != 0 {
		return nil, errors.New("nonzero padding")
	}
	m := &Map{Access: Access(h[4]), Size: int64(le.Uint64(h[8:]))}
	n := uint64(le.Uint32(h[16:]))
	rest := data[mapHeaderLen:]
	if n*pointLen > uint64(len(rest)) {
		return nil, fmt.Errorf("%d points do not fit in %d bytes", n, len(rest))
	}
	recs, windows := rest[:n*pointLen], rest[n*pointLen:]
	var total uint64
	for i := range n {
		total += uint64(le.Uint32(recs[i*pointLen+16:]))
	}
	if total != uint64(len(windows)) {
		return nil, fmt.Errorf("%d bytes of windows, the points describe %d", len(windows), total)
	}
	if n > 0 {
		m.Points = make([]Point, n)
	}
	windows = bytes.Clone(windows) // one allocation for all windows
	for i := range m.Points {
		r := recs[i*pointLen : (i+1)*pointLen]
		p := &m.Points[i]
		p.Out = int64(le.Uint64(r))
		p.In = int64(le.Uint64(r[8:]))
		if w := le.Uint32(r[16:]); w > 0 {
			p.Window, windows = windows[:w:w], windows[w:]
		}
	}
	if err := m.validate(); err != nil {
		return nil, err
	}
	return m, nil
}

// validate checks what a Reader relies on, and what a Recorder guarantees of the maps it
// makes:
//
//   - Access is known and Size is not negative;
//   - an AccessDirect map has no points;
//   - any other map has points unless its stream is empty; Points[0].Out is 0, Out increases
//     strictly and is at most Size (a gzip stream can end with an empty block, or member,
//     that gets a point of its own at Size); In is not negative and never decreases;
//   - only AccessGzip points have windows, of at most maxMapWindow bytes and never empty but
//     nil; a gzip point without a window is at a member header, so In is a whole byte.
func (m *Map) validate() error {
	switch {
	case m.Access < AccessDirect || m.Access > AccessSpill:
		return fmt.Errorf("unknown access %d", m.Access)
	case m.Size < 0:
		return fmt.Errorf("negative size %d", m.Size)
	case uint64(len(m.Points)) > math.MaxUint32:
		return fmt.Errorf("%d points", len(m.Points))
	case m.Access == AccessDirect && len(m.Points) > 0:
		return fmt.Errorf("%d points in a %s map", len(m.Points), m.Access)
	case m.Access != AccessDirect && len(m.Points) == 0 && m.Size > 0:
		return fmt.Errorf("no points in a %s map of %d bytes", m.Access, m.Size)
	}
	for i, p := range m.Points {
		switch {
		case i == 0 && p.Out != 0:
			return fmt.Errorf("the first point is at %d, not 0", p.Out)
		case i > 0 && p.Out <= m.Points[i-1].Out:
			return fmt.Errorf("point %d at %d, not after %d", i, p.Out, m.Points[i-1].Out)
		case p.Out > m.Size:
			return fmt.Errorf("point %d at %d, past the end of the %d-byte stream", i, p.Out, m.Size)
		case p.In < 0:
			return fmt.Errorf("point %d: negative input offset %d", i, p.In)
		case i > 0 && p.In < m.Points[i-1].In:
			return fmt.Errorf("point %d: input offset %d before the previous point's %d", i, p.In, m.Points[i-1].In)
		case p.Window != nil && m.Access != AccessGzip:
			return fmt.Errorf("point %d: a window in a %s map", i, m.Access)
		case p.Window != nil && len(p.Window) == 0:
			return fmt.Errorf("point %d: an empty window", i)
		case len(p.Window) > maxMapWindow:
			return fmt.Errorf("point %d: a window of %d bytes, more than %d", i, len(p.Window), maxMapWindow)
		case m.Access == AccessGzip && p.Window == nil && p.In%8 != 0:
			return fmt.Errorf("point %d: no window, and bit offset %d is not at a member header", i, p.In)
		}
	}
	return nil
}
