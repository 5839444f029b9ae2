package ocirender

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/ocirender/ocirender/image"
	"github.com/ocirender/ocirender/index"
	"github.com/ocirender/ocirender/layer"
)

// The index cache keeps what a scan learns about an image, so that the next Open of the same
// image skips the scan: the merged index and every layer's random-access map. One file per
// image, CacheDir/index/<manifest sha256>-<path hash>.v<cacheVersion>, holds
//
//	magic "ocirender-cache\n" | u32 version | sha256 of the rest | payload
//
// and the payload records, besides the index and the maps, what the blobs looked like when
// they were scanned (size, inode, modification time of the file holding each), so a changed
// blob makes the entry stale. Layers whose encoding has no resume points (single-frame zstd,
// bzip2, xz) are re-encoded during the scan into CacheDir/spill/<layer sha256>.zst, shared by
// every image that has the layer. Every file is written under a temporary name and renamed.
// A cache file that fails its checksum, its validation or its freshness check is never
// trusted: Open says so through Options.Notice and scans again.

const (
	cacheMagic   = "ocirender-cache\n"
	cacheVersion = 1
)

// errStale marks a cache entry that no longer describes the image's blobs.
var errStale = errors.New("stale")

// DefaultCacheDir returns $XDG_CACHE_HOME/ocirender, or ~/.cache/ocirender.
func DefaultCacheDir() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "ocirender"), nil
}

// cacheEntry is what the cache holds for one image.
type cacheEntry struct {
	index  *index.Index
	layers []cachedLayer
}

type cachedLayer struct {
	digest    string
	blob      blobStamp
	m         *layer.Map
	spillSize int64 // AccessSpill: the spill file's length
}

// blobStamp identifies the bytes of a blob without reading them.
type blobStamp struct {
	offset, size int64 // within the file
	fileSize     int64
	ino          uint64
	mtime        int64
}

func stampOf(b *image.Blob) (blobStamp, error) {
	fi, err := b.File.Stat()
	if err != nil {
		return blobStamp{}, err
	}
	s := blobStamp{offset: b.Offset, size: b.Size, fileSize: fi.Size(), mtime: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		s.ino = st.Ino
	}
	return s, nil
}

func hexOf(d string) string {
	_, h, _ := strings.Cut(d, ":")
	return h
}

// indexCachePath names the entry of an image: by its manifest digest, and by where it is, so
// that two copies of one image (whose blob files differ) do not keep replacing each other's
// entry. An image made from a registry's documents is where its name says, whatever the
// working directory.
func indexCachePath(dir string, img *image.Image) string {
	where := img.Path
	if img.InLayout() {
		if abs, err := filepath.Abs(img.Path); err == nil {
			where = abs
		}
	}
	h := sha256.Sum256([]byte(where))
	return filepath.Join(dir, "index", fmt.Sprintf("%s-%x.v%d", hexOf(img.ID), h[:6], cacheVersion))
}

// spillPath names the spill file of layer i of img: by the layer's digest, so that images
// sharing the layer share it, or, for a layer whose digest is unknown (some docker save
// layouts), by the image and the layer's position.
func spillPath(dir string, img *image.Image, i int) string {
	name := hexOf(string(img.Layers[i].Digest))
	if name == "" {
		name = fmt.Sprintf("%s-layer%d", hexOf(img.ID), i)
	}
	return filepath.Join(dir, "spill", name+".zst")
}

// encodeCache serialises an entry.
func encodeCache(imageID string, e *cacheEntry) ([]byte, error) {
	var p []byte
	p = appendString(p, imageID)
	p = binary.LittleEndian.AppendUint32(p, uint32(len(e.layers)))
	for _, l := range e.layers {
		p = appendString(p, l.digest)
		for _, v := range []int64{l.blob.offset, l.blob.size, l.blob.fileSize, int64(l.blob.ino), l.blob.mtime, l.spillSize} {
			p = binary.LittleEndian.AppendUint64(p, uint64(v))
		}
		mb, err := l.m.MarshalBinary()
		if err != nil {
			return nil, err
		}
		p = appendBytes(p, mb)
	}
	ib, err := e.index.MarshalBinary()
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

// decodeCache parses and checks an entry written by encodeCache for imageID.
func decodeCache(data []byte, imageID string) (*cacheEntry, error) {
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
	e := &cacheEntry{}
	for range n {
		var l cachedLayer
		l.digest = d.string()
		vals := make([]int64, 6)
		for i := range vals {
			vals[i] = int64(d.u64())
		}
		l.blob = blobStamp{offset: vals[0], size: vals[1], fileSize: vals[2], ino: uint64(vals[3]), mtime: vals[4]}
		l.spillSize = vals[5]
		mb := d.bytes()
		if d.err != nil {
			break
		}
		m, err := layer.UnmarshalMap(mb)
		if err != nil {
			return nil, err
		}
		l.m = m
		e.layers = append(e.layers, l)
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
		if in.Layer < 0 || in.Layer >= len(e.layers) || in.Size > e.layers[in.Layer].m.Size || in.Offset > e.layers[in.Layer].m.Size-in.Size {
			return nil, fmt.Errorf("inode %d: content at layer %d offset %d size %d lies outside the layers", ino, in.Layer, in.Offset, in.Size)
		}
	}
	e.index = ix
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

// loadCache returns the cached entry for img, nil with no error when there is none, or an
// error saying why an existing entry cannot be used.
func loadCache(dir string, img *image.Image) (*cacheEntry, error) {
	data, err := os.ReadFile(indexCachePath(dir, img))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	touch(indexCachePath(dir, img))
	e, err := decodeCache(data, img.ID)
	if err != nil {
		return nil, err
	}
	if len(e.layers) != len(img.Layers) {
		return nil, fmt.Errorf("%w: %d layers, the image has %d", errStale, len(e.layers), len(img.Layers))
	}
	for i, l := range e.layers {
		if l.digest != string(img.Layers[i].Digest) {
			return nil, fmt.Errorf("%w: layer %d is %s, the image has %s", errStale, i, l.digest, img.Layers[i].Digest)
		}
		blob, err := img.LayerBlob(i)
		if err != nil {
			return nil, err
		}
		st, err := stampOf(blob)
		if err != nil {
			return nil, err
		}
		if st != l.blob {
			return nil, fmt.Errorf("%w: layer %d's blob changed since it was scanned", errStale, i)
		}
	}
	return e, nil
}

// saveCache writes e for img, atomically.
func saveCache(dir string, img *image.Image, e *cacheEntry) error {
	data, err := encodeCache(img.ID, e)
	if err != nil {
		return err
	}
	if err := writeAtomic(indexCachePath(dir, img), data); err != nil {
		return err
	}
	markCache(dir)
	return nil
}

// writeAtomic writes data to path through a temporary file in the same directory.
func writeAtomic(path string, data []byte) (err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
