// Package assembly turns the layers of an image into its merged index and keeps their
// content readable. It scans layers (each once: verify the blob, decompress it, read its tar
// headers), several at once and from their files or from streams still downloading, merges
// them in layer order with overlay, records each layer's random-access map, keeps the
// uncompressed streams that exports and reads need (the blob in place, a spool, a reader
// through the map, a spill file), and adopts or saves the entries of the index cache.
//
// It is the engine behind the public API of the root package (Open, Convert, Packer, Pull),
// which owns the options users see. It knows nothing of output formats or FUSE.
package assembly

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/ocirender/ocirender/image"
	"github.com/ocirender/ocirender/index"
	"github.com/ocirender/ocirender/internal/cache"
	"github.com/ocirender/ocirender/layer"
)

// Options say what a scan keeps and where. The zero value keeps no content and uses no
// cache.
type Options struct {
	// Content keeps every layer's uncompressed stream readable (Layers.Content).
	// Uncompressed blobs are read in place; compressed ones through layer.Readers, which
	// resume decoding at the checkpoints the scan recorded (or the cache kept), unless Spool
	// is set.
	Content bool
	// Spool, with Content, makes a scan keep the uncompressed streams of compressed layers
	// in anonymous temporary files in TempDir, so each layer is decompressed exactly once.
	Spool   bool
	TempDir string // "" = os.TempDir()

	CacheDir  string           // the index cache; "" = none
	ReadCache *layer.ReadCache // for the layer readers; nil = one of the default budget
	Workers   int              // layers scanned at once; 0 = GOMAXPROCS

	Events func(Event)      // progress, from many goroutines at once
	Notice func(msg string) // remarks that are not errors
}

func (o Options) notice(format string, args ...any) {
	if o.Notice != nil {
		o.Notice(fmt.Sprintf(format, args...))
	}
}

// Layers is what an image's layers are once scanned or taken from the cache: for each
// layer, its random-access map and what reads its uncompressed stream.
type Layers struct {
	img     *image.Image
	content []io.ReaderAt
	maps    []*layer.Map
	spools  []*layer.Spool
	spills  []*os.File
	readers []*layer.Reader
	rcache  *layer.ReadCache
}

// NewLayers returns the (still empty) layers of img.
func NewLayers(img *image.Image, opts Options) *Layers {
	n := len(img.Layers)
	ls := &Layers{img: img, content: make([]io.ReaderAt, n), maps: make([]*layer.Map, n),
		spools: make([]*layer.Spool, n), spills: make([]*os.File, n), readers: make([]*layer.Reader, n),
		rcache: opts.ReadCache}
	if ls.rcache == nil {
		ls.rcache = layer.NewReadCache(0, 0)
	}
	return ls
}

// Content returns readers of the layers' uncompressed streams (nil entries without
// Options.Content). Each is safe for concurrent use.
func (ls *Layers) Content() []io.ReaderAt { return ls.content }

// Map returns the random-access map of layer i, or nil when none was recorded.
func (ls *Layers) Map(i int) *layer.Map { return ls.maps[i] }

// Close releases the layer readers, spools and spill files (not the image).
func (ls *Layers) Close() error {
	var errs []error
	for _, r := range ls.readers {
		if r != nil {
			errs = append(errs, r.Close())
		}
	}
	for _, s := range ls.spools {
		if s != nil {
			errs = append(errs, s.Close())
		}
	}
	for _, f := range ls.spills {
		if f != nil {
			errs = append(errs, f.Close())
			if strings.HasPrefix(filepath.Base(f.Name()), ".tmp-") {
				os.Remove(f.Name()) // a spill that never made it into the cache (gone if it did)
			}
		}
	}
	return errors.Join(errs...)
}

// blobSpan reads an uncompressed layer blob in place and lets sinks copy from it in the kernel.
type blobSpan struct{ *image.Blob }

func (b blobSpan) FileSpan() (*os.File, int64) { return b.File, b.Offset }

// spoolSpan exposes a spool's file to sinks.
type spoolSpan struct{ *layer.Spool }

func (s spoolSpan) FileSpan() (*os.File, int64) { return s.File(), 0 }

// Open returns the merged index of img and its layers: from the cache when opts.CacheDir
// holds a fresh entry for img, or else from a scan of every layer (which then fills the
// cache). A cache entry that cannot be used is reported through opts.Notice and rebuilt.
func Open(ctx context.Context, img *image.Image, opts Options) (_ *Layers, _ *index.Index, cached bool, err error) {
	ls := NewLayers(img, opts)
	defer func() {
		if err != nil {
			ls.Close()
		}
	}()
	if opts.CacheDir != "" {
		e, err := cache.Load(opts.CacheDir, img)
		if err == nil && e != nil {
			err = ls.adopt(e, opts)
			if err == nil {
				return ls, e.Index, true, nil
			}
			ls.forget() // start the scan from nothing the entry left behind
		}
		if err != nil {
			if errors.Is(err, cache.ErrStale) {
				opts.notice("cached index of %s is stale (%v); scanning the image again", img.Path, err)
			} else {
				opts.notice("cached index of %s is unusable (%v); scanning the image again", img.Path, err)
			}
		}
	}
	r := Start(ctx, ls, opts)
	for _, i := range largestFirst(img.Layers) {
		r.Layer(i, nil, nil)
	}
	ix, err := r.Finish()
	r.Cancel(nil)
	if err != nil {
		return nil, nil, false, err
	}
	if err := ls.Settle(ix, opts); err != nil {
		return nil, nil, false, err
	}
	return ls, ix, false, nil
}

// Settle follows a scan: it saves the cache entry of ix and opens the readers Content needs.
func (ls *Layers) Settle(ix *index.Index, opts Options) error {
	if opts.CacheDir != "" {
		if err := ls.save(opts.CacheDir, ix); err != nil {
			opts.notice("could not save the index of %s in the cache: %v", ls.img.Path, err)
		}
	}
	if opts.Content && !opts.Spool {
		return ls.openReaders()
	}
	return nil
}

// forget drops the maps, readers and spill files an unusable cache entry left.
func (ls *Layers) forget() {
	for i := range ls.maps {
		if r := ls.readers[i]; r != nil {
			r.Close()
		}
		if f := ls.spills[i]; f != nil {
			f.Close()
		}
	}
	clear(ls.maps)
	clear(ls.readers)
	clear(ls.spills)
	clear(ls.content)
}

// adopt takes the maps of a cache entry and, with opts.Content, opens the readers.
func (ls *Layers) adopt(e *cache.Entry, opts Options) error {
	for i, l := range e.Layers {
		ls.maps[i] = l.Map
		if l.Map.Access != layer.AccessSpill || !opts.Content {
			continue
		}
		cache.Touch(cache.SpillPath(opts.CacheDir, ls.img, i))
		f, err := os.Open(cache.SpillPath(opts.CacheDir, ls.img, i))
		if err != nil {
			return err
		}
		ls.spills[i] = f
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		if fi.Size() != l.SpillSize {
			return fmt.Errorf("%w: the spill file of layer %d has %d bytes, not %d", cache.ErrStale, i, fi.Size(), l.SpillSize)
		}
	}
	if opts.Content {
		return ls.openReaders()
	}
	return nil
}

// openReaders makes Content read every layer through its map.
func (ls *Layers) openReaders() error {
	for i, m := range ls.maps {
		if m == nil {
			return fmt.Errorf("layer %d: %w", i, layer.ErrNoMap)
		}
		blob, err := ls.img.LayerBlob(i)
		if err != nil {
			return err
		}
		if m.Access == layer.AccessDirect {
			ls.content[i] = blobSpan{blob}
			continue
		}
		var src io.ReaderAt = blob
		size := blob.Size
		if m.Access == layer.AccessSpill {
			f := ls.spills[i]
			if f == nil {
				return fmt.Errorf("layer %d: no spill file", i)
			}
			fi, err := f.Stat()
			if err != nil {
				return err
			}
			src, size = f, fi.Size()
		}
		r, err := layer.NewReader(src, size, m, ls.rcache)
		if err != nil {
			return err
		}
		ls.readers[i] = r
		ls.content[i] = r
	}
	return nil
}

// save writes the cache entry of a scanned image, moving its spill files into the cache.
func (ls *Layers) save(dir string, ix *index.Index) error {
	e := &cache.Entry{Index: ix}
	for i, m := range ls.maps {
		if m == nil {
			return fmt.Errorf("layer %d has no map", i)
		}
		blob, err := ls.img.LayerBlob(i)
		if err != nil {
			return err
		}
		st, err := cache.StampOf(blob)
		if err != nil {
			return err
		}
		l := cache.Layer{Digest: string(ls.img.Layers[i].Digest), Blob: st, Map: m}
		if m.Access == layer.AccessSpill {
			f := ls.spills[i]
			fi, err := f.Stat()
			if err != nil {
				return err
			}
			l.SpillSize = fi.Size()
			if err := os.Rename(f.Name(), cache.SpillPath(dir, ls.img, i)); err != nil {
				return err
			}
		}
		e.Layers = append(e.Layers, l)
	}
	return cache.Save(dir, ls.img, e)
}
