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
// The packages below do the work: image (layouts and blobs), layer (decompression), overlay
// (the merge rules), index (the merged tree) and export (the sinks).
package ocirender

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/ocirender/ocirender/export"
	"github.com/ocirender/ocirender/image"
	"github.com/ocirender/ocirender/index"
	"github.com/ocirender/ocirender/layer"
	"github.com/ocirender/ocirender/overlay"
)

// Options tune Open. The zero value opens the only image of a layout for the host platform
// and keeps no layer content.
type Options struct {
	Ref      string // manifest by ref name annotation or docker RepoTag
	Platform string // os/arch[/variant]; "" = the host's

	// Content keeps every layer's uncompressed stream readable after the scan (Image.Content),
	// as exports need: uncompressed blobs are read in place, compressed ones are spooled to an
	// anonymous temporary file in TempDir while they are scanned, so each layer is
	// decompressed exactly once.
	Content bool
	TempDir string // "" = os.TempDir()

	// Workers bounds the layers scanned at once; 0 = GOMAXPROCS.
	Workers int

	// Progress, when set, receives the compressed bytes read so far and the total. It is
	// called from the scanning goroutines, often: keep it cheap.
	Progress func(done, total int64)
}

// Image is an opened image: its descriptors, the merged index, and (with Options.Content)
// readers of every layer's uncompressed stream.
type Image struct {
	*image.Image
	Index  *index.Index
	layers []io.ReaderAt
	spools []*layer.Spool
}

// Content returns readers of the layers' uncompressed streams, for export (nil without
// Options.Content).
func (im *Image) Content() export.Layers { return im.layers }

// Close releases the layer spools and the image files.
func (im *Image) Close() error {
	var errs []error
	for _, s := range im.spools {
		if s != nil {
			errs = append(errs, s.Close())
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

// Open reads the image at path and merges its layers into an index.
func Open(ctx context.Context, path string, opts Options) (_ *Image, err error) {
	img, err := image.Open(path, image.Options{Ref: opts.Ref, Platform: opts.Platform})
	if err != nil {
		return nil, err
	}
	im := &Image{Image: img}
	defer func() {
		if err != nil {
			im.Close()
		}
	}()
	n := len(img.Layers)
	im.layers = make([]io.ReaderAt, n)
	im.spools = make([]*layer.Spool, n)
	results := make([]chan scanResult, n)
	for i := range results {
		results[i] = make(chan scanResult, 1)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var total, done atomic.Int64
	for _, l := range img.Layers {
		total.Add(l.Size)
	}
	progress := func(k int64) {
		if opts.Progress != nil {
			opts.Progress(done.Add(k), total.Load())
		}
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	sem := make(chan struct{}, workers)
	var wg sync.WaitGroup
	// Scan the largest layers first: they bound the wall time.
	for _, i := range largestFirst(img.Layers) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				results[i] <- scanResult{err: ctx.Err()}
				return
			}
			defer func() { <-sem }()
			results[i] <- im.scan(ctx, i, opts, progress)
		}()
	}
	defer wg.Wait()

	m := overlay.New(overlay.Options{})
	for i := range n {
		r := <-results[i]
		err := r.err
		if err == nil {
			err = m.Apply(r.changes)
		}
		if err != nil {
			cancel()
			var de *image.DigestError
			if errors.As(err, &de) {
				return nil, de // it names the image and the layer itself
			}
			return nil, fmt.Errorf("%s: layer %d (%s): %w", path, i, img.Layers[i].Digest, err)
		}
	}
	if im.Index, err = m.Index(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return im, nil
}

type scanResult struct {
	changes []overlay.Change
	err     error
}

func largestFirst(ls []image.Layer) []int {
	order := make([]int, len(ls))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(ls[b].Size, ls[a].Size) })
	return order
}

// scan reads layer i once: it verifies the blob, decompresses it, records its entries and,
// with opts.Content, keeps its uncompressed stream.
func (im *Image) scan(ctx context.Context, i int, opts Options, progress func(int64)) scanResult {
	if _, _, err := layer.FromMediaType(im.Image.Layers[i].MediaType); err != nil {
		return scanResult{err: err}
	}
	blob, err := im.LayerBlob(i)
	if err != nil {
		return scanResult{err: err}
	}
	head := make([]byte, 8)
	k, _ := blob.ReadAt(head, 0)
	comp := layer.Detect(head[:k])

	rc, err := im.OpenLayer(i)
	if err != nil {
		return scanResult{err: err}
	}
	defer rc.Close()
	// Three stages, each on its own goroutine: read and verify the blob, decompress it, and
	// (here) parse its tar headers and spool its bytes.
	raw := newReadahead(&ctxReader{ctx: ctx, r: rc, progress: progress}, 1<<20, 4)
	defer raw.Close()
	dr, err := layer.Decompress(raw, comp, true, layer.Options{})
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
	if opts.Content {
		if comp == layer.Uncompressed {
			im.layers[i] = blobSpan{blob}
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
	return scanResult{changes: changes}
}

// ctxReader stops a scan when its context is cancelled and reports progress.
type ctxReader struct {
	ctx      context.Context
	r        io.Reader
	progress func(int64)
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.r.Read(p)
	if n > 0 {
		c.progress(int64(n))
	}
	return n, err
}
