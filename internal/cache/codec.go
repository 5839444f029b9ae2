package cache

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/ocirender/ocirender/index"
	"github.com/ocirender/ocirender/layer"
)

// encode serialises an entry.
func encode(imageID string, e *Entry) ([]byte, error) {
	var p []byte
	p = appendString(p, imageID)
	p = binary.LittleEndian.AppendUint32(p, uint32(len(e.Layers)))
	for _, l := range e.Layers {
		p = appendString(p, l.Digest)
		for _, v := range []int64{l.Blob.offset, l.Blob.size, l.Blob.fileSize, int64(l.Blob.ino), l.Blob.mtime, l.SpillSize} {
			p = binary.LittleEndian.AppendUint64(p, uint64(v))
		}
		mb, err := l.Map.MarshalBinary()
		if err != nil {
			return nil, err
		}
		p = appendBytes(p, mb)
	}
	ib, err := e.Index.MarshalBinary()
	if err != nil {
		return nil, err
	}
	p = appendBytes(p, ib)

	out := make([]byte, 0, len(cacheMagic)+4+sha256.Size+len(p))
	out = append(out, cacheMagic...)
	out = binary.LittleEndian.AppendUint32(out, cacheVersion)
	sum := sha256.Sum256(p)
	out = append(out, sum[:]...)
	return append(out, p...), nil
}

// decode parses and checks an entry written by encode for imageID.
func decode(data []byte, imageID string) (*Entry, error) {
	h := len(cacheMagic) + 4 + sha256.Size
	if len(data) < h || string(data[:len(cacheMagic)]) != cacheMagic {
		return nil, errors.New("not a cache file")
	}
	if v := binary.LittleEndian.Uint32(data[len(cacheMagic):]); v != cacheVersion {
		return nil, fmt.Errorf("format version %d, want %d", v, cacheVersion)
	}
	p := data[h:]
	if sum := sha256.Sum256(p); !bytes.Equal(sum[:], data[h-sha256.Size:h]) {
		return nil, errors.New("checksum mismatch")
	}
	d := decoder{b: p}
	if id := d.string(); id != imageID && d.err == nil {
		return nil, fmt.Errorf("written for image %q", id)
	}
	n := d.u32()
	if d.err == nil && uint64(n) > uint64(len(d.b)) {
		return nil, errors.New("truncated")
	}
	e := &Entry{}
	for range n {
		var l Layer
		l.Digest = d.string()
		vals := make([]int64, 6)
		for i := range vals {
			vals[i] = int64(d.u64())
		}
		l.Blob = Stamp{offset: vals[0], size: vals[1], fileSize: vals[2], ino: uint64(vals[3]), mtime: vals[4]}
		l.SpillSize = vals[5]
		mb := d.bytes()
		if d.err != nil {
			break
		}
		m, err := layer.UnmarshalMap(mb)
		if err != nil {
			return nil, err
		}
		l.Map = m
		e.Layers = append(e.Layers, l)
	}
	ib := d.bytes()
	if d.err != nil {
		return nil, d.err
	}
	if len(d.b) != 0 {
		return nil, errors.New("trailing bytes")
	}
	ix, err := index.Unmarshal(ib)
	if err != nil {
		return nil, err
	}
	// Content locators must lie within the streams the maps describe.
	for ino := range ix.Inodes() {
		in := ix.Inode(index.InodeID(ino))
		if in.Type != index.Reg || in.Size == 0 {
			continue
		}
		if in.Layer < 0 || in.Layer >= len(e.Layers) || in.Size > e.Layers[in.Layer].Map.Size || in.Offset > e.Layers[in.Layer].Map.Size-in.Size {
			return nil, fmt.Errorf("inode %d: content at layer %d offset %d size %d lies outside the layers", ino, in.Layer, in.Offset, in.Size)
		}
	}
	e.Index = ix
	return e, nil
}

func appendString(p []byte, s string) []byte {
	p = binary.LittleEndian.AppendUint32(p, uint32(len(s)))
	return append(p, s...)
}

func appendBytes(p, b []byte) []byte {
	p = binary.LittleEndian.AppendUint64(p, uint64(len(b)))
	return append(p, b...)
}

// decoder reads what appendString and friends wrote; the first failure sticks.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) take(n uint64) []byte {
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.err = errors.New("truncated")
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) u32() uint32 {
	if b := d.take(4); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

func (d *decoder) u64() uint64 {
	if b := d.take(8); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}

func (d *decoder) string() string { return string(d.take(uint64(d.u32()))) }

func (d *decoder) bytes() []byte { return d.take(d.u64()) }
