// Package cache is the on-disk index cache: what a scan learns about an image, kept so that
// the next open of the same image skips the scan. It owns the entry format (the merged index
// and every layer's random-access map, checksummed and validated on load), the freshness
// check of an entry against the image's blob files, the names of entries and spill files,
// and the trimming of the cache (Usage, Prune). It does not scan, decode or merge layers:
// that is the assembly's job, which hands it entries to save and takes the ones it loads.
package cache

import (
	"crypto/sha256"
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

// ErrStale marks a cache entry that no longer describes the image's blobs.
var ErrStale = errors.New("stale")

// DefaultDir returns $XDG_CACHE_HOME/ocirender, or ~/.cache/ocirender.
func DefaultDir() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "ocirender"), nil
}

// Entry is what the cache holds for one image.
type Entry struct {
	Index  *index.Index
	Layers []Layer // one per layer of the image, base first
}

// Layer is what an entry records of one layer.
type Layer struct {
	Digest    string
	Blob      Stamp      // the blob's file when it was scanned
	Map       *layer.Map // where decoding can resume
	SpillSize int64      // AccessSpill: the spill file's length
}

// Stamp identifies the bytes of a blob without reading them.
type Stamp struct {
	offset, size int64 // within the file
	fileSize     int64
	ino          uint64
	mtime        int64
}

func StampOf(b *image.Blob) (Stamp, error) {
	fi, err := b.File.Stat()
	if err != nil {
		return Stamp{}, err
	}
	s := Stamp{offset: b.Offset, size: b.Size, fileSize: fi.Size(), mtime: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		s.ino = st.Ino
	}
	return s, nil
}

func hexOf(d string) string {
	_, h, _ := strings.Cut(d, ":")
	return h
}

// IndexPath names the entry of an image: by its manifest digest, and by where it is, so
// that two copies of one image (whose blob files differ) do not keep replacing each other's
// entry. An image made from a registry's documents is where its name says, whatever the
// working directory.
func IndexPath(dir string, img *image.Image) string {
	where := img.Path
	if img.InLayout() {
		if abs, err := filepath.Abs(img.Path); err == nil {
			where = abs
		}
	}
	h := sha256.Sum256([]byte(where))
	return filepath.Join(dir, "index", fmt.Sprintf("%s-%x.v%d", hexOf(img.ID), h[:6], cacheVersion))
}

// SpillPath names the spill file of layer i of img: by the layer's digest, so that images
// sharing the layer share it, or, for a layer whose digest is unknown (some docker save
// layouts), by the image and the layer's position.
func SpillPath(dir string, img *image.Image, i int) string {
	name := hexOf(string(img.Layers[i].Digest))
	if name == "" {
		name = fmt.Sprintf("%s-layer%d", hexOf(img.ID), i)
	}
	return filepath.Join(dir, "spill", name+".zst")
}

// Load returns the cached entry for img, nil with no error when there is none, or an
// error saying why an existing entry cannot be used.
func Load(dir string, img *image.Image) (*Entry, error) {
	data, err := os.ReadFile(IndexPath(dir, img))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	Touch(IndexPath(dir, img))
	e, err := decode(data, img.ID)
	if err != nil {
		return nil, err
	}
	if len(e.Layers) != len(img.Layers) {
		return nil, fmt.Errorf("%w: %d layers, the image has %d", ErrStale, len(e.Layers), len(img.Layers))
	}
	for i, l := range e.Layers {
		if l.Digest != string(img.Layers[i].Digest) {
			return nil, fmt.Errorf("%w: layer %d is %s, the image has %s", ErrStale, i, l.Digest, img.Layers[i].Digest)
		}
		blob, err := img.LayerBlob(i)
		if err != nil {
			return nil, err
		}
		st, err := StampOf(blob)
		if err != nil {
			return nil, err
		}
		if st != l.Blob {
			return nil, fmt.Errorf("%w: layer %d's blob changed since it was scanned", ErrStale, i)
		}
	}
	return e, nil
}

// Save writes e for img, atomically.
func Save(dir string, img *image.Image, e *Entry) error {
	data, err := encode(img.ID, e)
	if err != nil {
		return err
	}
	if err := writeAtomic(IndexPath(dir, img), data); err != nil {
		return err
	}
	mark(dir)
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
