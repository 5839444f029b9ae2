// Package ocirender turns OCI container images into something usable without a container
// engine: the merged root filesystem of an image as an index that can be inspected, exported
// (tar, directory) or mounted.
//
// Open reads an image (an OCI layout or a `docker save` layout, as a directory or as a .tar
// archive), scans its layers in parallel, verifies every blob against its digest and merges
// the layers into an index.Index following the OCI layer rules:
//
//	img, err := ocirender.Open(ctx, "debian.tar", ocirender.Options{Ref: "bookworm", Content: true})
//	if err != nil { ... }
//	defer img.Close()
//	err = export.Tar(ctx, os.Stdout, img.Index, img.Content(), export.TarOptions{})
//
// Convert does the same in one call and a Packer does it for layers that arrive one by one,
// in any order, as downloads finish (see the examples).
//
// The packages below do the work: image (layouts and blobs), layer (decompression), overlay
// (the merge rules), index (the merged tree) and export (the sinks).
package ocirender

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/ocirender/ocirender/export"
	"github.com/ocirender/ocirender/image"
	"github.com/ocirender/ocirender/index"
	"github.com/ocirender/ocirender/internal/cache"
	"github.com/ocirender/ocirender/layer"
	"github.com/ocirender/ocirender/overlay"
)

// Options tune Open. The zero value opens the only image of a layout for the host platform,
// keeps no layer content and uses no cache.
type Options struct {
	Ref      string // manifest by ref name annotation or docker RepoTag
	Platform string // os/arch[/variant]; "" = the host's

	// Content keeps every layer's uncompressed stream readable after Open (Image.Content),
	// as exports, cat and mounts need. Uncompressed blobs are read in place; compressed ones
	// through layer.Readers, which resume decoding at the checkpoints the scan recorded (or
	// the cache kept), unless Spool is set.
	Content bool
	// Spool, with Content, makes a scan keep the uncompressed streams of compressed layers
	// in anonymous temporary files in TempDir, so each layer is decompressed exactly once:
	// the fastest way to export an image once. It does not apply when the index comes from
	// the cache.
	Spool   bool
	TempDir string // "" = os.TempDir()

	// CacheDir, when set, is the index cache (see internal/cache): an image scanned once is opened
	// from there next time without reading its layers. "" disables the cache.
	CacheDir string
	// ReadCache holds decoded spans and live decoders for the layer readers; nil gives the
	// image one of layer.DefaultCacheBudget.
	ReadCache *layer.ReadCache

	// Workers bounds the layers scanned at once; 0 = GOMAXPROCS.
	Workers int

	// Progress, when set, receives the compressed bytes read so far and the total. It is
	// called from the scanning goroutines, often: keep it cheap.
	Progress func(done, total int64)
	// Events, when set, receives the start, progress and end of each layer's scan and the
	// progress of an export. Calls come from many goroutines at once: keep it cheap and safe.
	Events func(Event)
	// Notice, when set, receives one-line remarks that are not errors: a cache entry found
	// unusable and rebuilt, say.
	Notice func(msg string)
}

// Image is an opened image: its descriptors, the merged index, and (with Options.Content)
// readers of every layer's uncompressed stream.
type Image struct {
	*image.Image
	Index *index.Index
	// Cached reports whether the index came from the cache rather than from a scan.
	Cached bool

	layers  []io.ReaderAt
	maps    []*layer.Map
	spools  []*layer.Spool
	spills  []*os.File
	readers []*layer.Reader
	rcache  *layer.ReadCache
}

// Content returns readers of the layers' uncompressed streams, for export (nil without
// Options.Content).
func (im *Image) Content() export.Layers { return im.layers }

// LayerMap returns the random-access map of layer i: the length of its uncompressed stream
// and where decoding can resume. It is nil when Open recorded none (no CacheDir, and Content
// without readers or not at all).
func (im *Image) LayerMap(i int) *layer.Map { return im.maps[i] }

// Close releases the layer readers, spools and the image files.
func (im *Image) Close() error {
	var errs []error
	for _, r := range im.readers {
		if r != nil {
			errs = append(errs, r.Close())
		}
	}
	for _, s := range im.spools {
		if s != nil {
			errs = append(errs, s.Close())
		}
	}
	for _, f := range im.spills {
		if f != nil {
			errs = append(errs, f.Close())
			if strings.HasPrefix(filepath.Base(f.Name()), ".tmp-") {
				os.Remove(f.Name()) // a spill that never made it into the cache (gone if it did)
			}
		}
	}
	errs = append(errs, im.Image.Close())
	return errors.Join(errs...)
}

// blobSpan reads an uncompressed layer blob in place and lets sinks copy from it in the kernel.
type blobSpan struct{ *image.Blob }

func (b blobSpan) FileSpan() (*os.File, int64) { return b.File, b.Offset }

// spoolSpan exposes a spool's file to sinks.
type spoolSpan struct{ *layer.Spool }

func (s spoolSpan) FileSpan() (*os.File, int64) { return s.File(), 0 }

// Open reads the image at path and merges its layers into an index, or takes the index from
// the cache when it holds a fresh entry for the image.
func Open(ctx context.Context, path string, opts Options) (*Image, error) {
	img, err := image.Open(path, image.Options{Ref: opts.Ref, Platform: opts.Platform})
	if err != nil {
		return nil, err
	}
	return OpenImage(ctx, img, opts)
}

// OpenImage is Open for an image already read (from a layout by image.Open, or from a
// registry's documents by image.FromManifest with every layer's file set). It takes img over:
// the returned Image closes it, and so does a failed OpenImage. opts.Ref and opts.Platform do
// not apply.
func OpenImage(ctx context.Context, img *image.Image, opts Options) (_ *Image, err error) {
	im := newImage(img, opts)
	defer func() {
		if err != nil {
			im.Close()
		}
	}()
	if opts.CacheDir != "" {
		e, err := cache.Load(opts.CacheDir, img)
		if err == nil && e != nil {
			err = im.adopt(e, opts)
			if err == nil {
				return im, nil
			}
			im.forget() // start the scan from nothing the entry left behind
		}
		if err != nil {
			if errors.Is(err, cache.ErrStale) {
				notice(opts, "cached index of %s is stale (%v); scanning the image again", img.Path, err)
			} else {
				notice(opts, "cached index of %s is unusable (%v); scanning the image again", img.Path, err)
			}
		}
	}
	a := im.newAssembly(ctx, opts)
	for _, i := range largestFirst(img.Layers) {
		a.start(i, nil, nil)
	}
	err = a.finish()
	a.cancel(nil)
	if err != nil {
		return nil, err
	}
	if err := im.settle(opts); err != nil {
		return nil, err
	}
	return im, nil
}

func newImage(img *image.Image, opts Options) *Image {
	n := len(img.Layers)
	im := &Image{Image: img, layers: make([]io.ReaderAt, n), maps: make([]*layer.Map, n),
		spools: make([]*layer.Spool, n), spills: make([]*os.File, n), readers: make([]*layer.Reader, n),
		rcache: opts.ReadCache}
	if im.rcache == nil {
		im.rcache = layer.NewReadCache(0, 0)
	}
	return im
}

func notice(opts Options, format string, args ...any) {
	if opts.Notice != nil {
		opts.Notice(fmt.Sprintf(format, args...))
	}
}

// settle follows a scan: it saves the cache entry and opens the readers Content needs.
func (im *Image) settle(opts Options) error {
	if opts.CacheDir != "" {
		if err := im.save(opts.CacheDir); err != nil {
			notice(opts, "could not save the index of %s in the cache: %v", im.Path, err)
		}
	}
	if opts.Content && !opts.Spool {
		return im.openReaders()
	}
	return nil
}

// forget drops the maps, readers and spill files an unusable cache entry left.
func (im *Image) forget() {
	for i := range im.maps {
		if r := im.readers[i]; r != nil {
			r.Close()
		}
		if f := im.spills[i]; f != nil {
			f.Close()
		}
	}
	clear(im.maps)
	clear(im.readers)
	clear(im.spills)
	clear(im.layers)
}

// adopt takes the index and maps of a cache entry and, with opts.Content, opens the readers.
func (im *Image) adopt(e *cache.Entry, opts Options) error {
	for i, l := range e.Layers {
		im.maps[i] = l.Map
		if l.Map.Access != layer.AccessSpill || !opts.Content {
			continue
		}
		cache.Touch(cache.SpillPath(opts.CacheDir, im.Image, i))
		f, err := os.Open(cache.SpillPath(opts.CacheDir, im.Image, i))
		if err != nil {
			return err
		}
		im.spills[i] = f
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		if fi.Size() != l.SpillSize {
			return fmt.Errorf("%w: the spill file of layer %d has %d bytes, not %d", cache.ErrStale, i, fi.Size(), l.SpillSize)
		}
	}
	if opts.Content {
		if err := im.openReaders(); err != nil {
			return err
		}
	}
	im.Index = e.Index
	im.Cached = true
	return nil
}

// openReaders makes Content read every layer through its map.
func (im *Image) openReaders() error {
	for i, m := range im.maps {
		if m == nil {
			return fmt.Errorf("layer %d: %w", i, layer.ErrNoMap)
		}
		blob, err := im.LayerBlob(i)
		if err != nil {
			return err
		}
		if m.Access == layer.AccessDirect {
			im.layers[i] = blobSpan{blob}
			continue
		}
		var src io.ReaderAt = blob
		size := blob.Size
		if m.Access == layer.AccessSpill {
			f := im.spills[i]
			if f == nil {
				return fmt.Errorf("layer %d: no spill file", i)
			}
			fi, err := f.Stat()
			if err != nil {
				return err
			}
			src, size = f, fi.Size()
		}
		r, err := layer.NewReader(src, size, m, im.rcache)
		if err != nil {
			return err
		}
		im.readers[i] = r
		im.layers[i] = r
	}
	return nil
}

// save writes the cache entry of a scanned image, moving its spill files into the cache.
func (im *Image) save(dir string) error {
	e := &cache.Entry{Index: im.Index}
	for i, m := range im.maps {
		if m == nil {
			return fmt.Errorf("layer %d has no map", i)
		}
		blob, err := im.LayerBlob(i)
		if err != nil {
			return err
		}
		st, err := cache.StampOf(blob)
		if err != nil {
			return err
		}
		l := cache.Layer{Digest: string(im.Image.Layers[i].Digest), Blob: st, Map: m}
		if m.Access == layer.AccessSpill {
			f := im.spills[i]
			fi, err := f.Stat()
			if err != nil {
				return err
			}
			l.SpillSize = fi.Size()
			if err := os.Rename(f.Name(), cache.SpillPath(dir, im.Image, i)); err != nil {
				return err
			}
		}
		e.Layers = append(e.Layers, l)
	}
	return cache.Save(dir, im.Image, e)
}

// scan reads layer i once: it verifies the blob, decompresses it, records its entries and,
// with opts.Content, keeps its uncompressed stream.
//
// With stream set, the blob is read from stream (a download as it arrives) instead of its
// file, which the caller makes known (SetLayerFile) once it is complete; an uncompressed
// layer's content is then left for the caller to set (adoptBlob).
func (im *Image) scan(ctx context.Context, i int, opts Options, progress func(int64), stream io.Reader) scanResult {
	if _, _, err := layer.FromMediaType(im.Image.Layers[i].MediaType); err != nil {
		return scanResult{err: err}
	}
	var (
		blob *image.Blob
		rc   io.ReadCloser
		comp layer.Compression
		err  error
	)
	if stream == nil {
		if blob, err = im.LayerBlob(i); err != nil {
			return scanResult{err: err}
		}
		head := make([]byte, 8)
		k, _ := blob.ReadAt(head, 0)
		comp = layer.Detect(head[:k])
		rc, err = im.OpenLayer(i)
	} else {
		br := bufio.NewReaderSize(stream, 64<<10)
		head, _ := br.Peek(8)
		comp = layer.Detect(head)
		rc, err = im.VerifyLayer(i, br)
	}
	if err != nil {
		return scanResult{err: err}
	}
	defer rc.Close()
	// Three stages, each on its own goroutine: read and verify the blob, decompress it, and
	// (here) parse its tar headers and spool its bytes.
	raw := newReadahead(&ctxReader{ctx: ctx, r: rc, progress: progress}, 1<<20, 4)
	defer raw.Close()
	// Record a random-access map when the layer will be read again through one, or cached.
	var rec *layer.Recorder
	if opts.CacheDir != "" || opts.Content && !opts.Spool {
		if comp == layer.Uncompressed {
			im.maps[i] = &layer.Map{Access: layer.AccessDirect, Size: im.Image.Layers[i].Size}
		} else {
			rec = &layer.Recorder{Spill: func() (*os.File, error) {
				f, err := im.newSpill(opts)
				im.spills[i] = f
				return f, err
			}}
		}
	}
	dr, err := layer.Decompress(raw, comp, true, layer.Options{Record: rec})
	if err != nil {
		return scanResult{err: err}
	}
	defer dr.Close()
	var src io.Reader = dr
	var ahead *readahead
	if comp != layer.Uncompressed {
		ahead = newReadahead(dr, 1<<20, 4)
		defer ahead.Close()
		src = ahead
	}
	// fail reports err, unless the blob itself does not match its digest: bytes that are not
	// what the manifest names explain any parse error after them, so say that instead.
	fail := func(err error) scanResult {
		if ahead != nil {
			ahead.Close() // nothing may read the decompressor while raw is drained
		}
		if _, derr := io.Copy(io.Discard, raw); errors.Is(derr, image.ErrDigest) {
			err = derr
		}
		return scanResult{err: err}
	}
	if opts.Content && opts.Spool {
		if comp == layer.Uncompressed {
			if blob != nil {
				im.layers[i] = blobSpan{blob}
			}
		} else {
			sp, err := layer.NewSpool(opts.TempDir)
			if err != nil {
				return scanResult{err: err}
			}
			im.spools[i] = sp
			im.layers[i] = spoolSpan{sp}
			src = io.TeeReader(src, sp)
		}
	}
	changes, err := overlay.ReadChanges(src, overlay.ScanOptions{Layer: i})
	if err != nil {
		return fail(err)
	}
	// Read to the very end: trailing blocks must reach the spool, and the digest is only
	// checked once the blob has been read whole.
	if _, err := io.Copy(io.Discard, src); err != nil {
		return fail(err)
	}
	if _, err := io.Copy(io.Discard, raw); err != nil {
		return scanResult{err: err}
	}
	if sp := im.spools[i]; sp != nil {
		if err := sp.Flush(); err != nil {
			return scanResult{err: err}
		}
	}
	if rec != nil {
		m, err := rec.Map()
		if err != nil {
			return scanResult{err: err}
		}
		im.maps[i] = m
		if f := im.spills[i]; f != nil && m.Access != layer.AccessSpill {
			// The stream turned out to have resume points of its own.
			f.Close()
			if opts.CacheDir != "" {
				os.Remove(f.Name())
			}
			im.spills[i] = nil
		}
	}
	return scanResult{changes: changes}
}

// newSpill creates the file a layer without resume points is re-encoded into: in the cache
// under a temporary name (save renames it), or else an unlinked file in TempDir.
func (im *Image) newSpill(opts Options) (*os.File, error) {
	if opts.CacheDir != "" {
		dir := filepath.Join(opts.CacheDir, "spill")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		return os.CreateTemp(dir, ".tmp-*")
	}
	f, err := os.CreateTemp(opts.TempDir, "ocirender-spill-*")
	if err != nil {
		return nil, err
	}
	os.Remove(f.Name())
	return f, nil
}

// ctxReader stops a scan when its context is cancelled and reports progress.
type ctxReader struct {
	ctx      context.Context
	r        io.Reader
	progress func(int64)
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if c.ctx.Err() != nil {
		return 0, context.Cause(c.ctx)
	}
	n, err := c.r.Read(p)
	if n > 0 {
		c.progress(int64(n))
	}
	return n, err
}

// OpenFile returns a reader of the regular file at path in the merged tree, following
// symlinks inside the image (chroot-style) unless noFollow, and its entry. The image must
// have been opened with Options.Content.
func (im *Image) OpenFile(path string, noFollow bool) (*io.SectionReader, index.Entry, error) {
	id, err := im.Index.Resolve(path, !noFollow)
	if err != nil {
		return nil, index.Entry{}, fmt.Errorf("%s: %s: %w", im.Path, path, err)
	}
	e := im.Index.Entry(id)
	if e.Type != index.Reg {
		what := map[index.Type]string{index.Dir: "a directory", index.Symlink: "a symlink",
			index.Char: "a character device", index.Block: "a block device", index.Fifo: "a fifo",
			index.Socket: "a socket"}[e.Type]
		return nil, e, fmt.Errorf("%s: %s: is %s, not a regular file", im.Path, path, what)
	}
	if e.Size == 0 {
		return io.NewSectionReader(eof{}, 0, 0), e, nil
	}
	if e.Layer < 0 || e.Layer >= len(im.layers) || im.layers[e.Layer] == nil {
		return nil, e, fmt.Errorf("%s: %s: the image was opened without its content", im.Path, path)
	}
	return io.NewSectionReader(im.layers[e.Layer], e.Offset, e.Size), e, nil
}

type eof struct{}

func (eof) ReadAt([]byte, int64) (int, error) { return 0, io.EOF }
