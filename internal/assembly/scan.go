package assembly

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"

	"github.com/ocirender/ocirender/image"
	"github.com/ocirender/ocirender/layer"
	"github.com/ocirender/ocirender/overlay"
)

// scan reads layer i once: it verifies the blob, decompresses it, records its entries and,
// with opts.Content, keeps its uncompressed stream.
//
// With stream set, the blob is read from stream (a download as it arrives) instead of its
// file, which the caller makes known (SetLayerFile) once it is complete; an uncompressed
// layer's content is then left for the caller to set (adoptBlob).
func (ls *Layers) scan(ctx context.Context, i int, opts Options, progress func(int64), stream io.Reader) scanResult {
	if _, _, err := layer.FromMediaType(ls.img.Layers[i].MediaType); err != nil {
		return scanResult{err: err}
	}
	var (
		blob *image.Blob
		rc   io.ReadCloser
		comp layer.Compression
		err  error
	)
	if stream == nil {
		if blob, err = ls.img.LayerBlob(i); err != nil {
			return scanResult{err: err}
		}
		head := make([]byte, 8)
		k, _ := blob.ReadAt(head, 0)
		comp = layer.Detect(head[:k])
		rc, err = ls.img.OpenLayer(i)
	} else {
		br := bufio.NewReaderSize(stream, 64<<10)
		head, _ := br.Peek(8)
		comp = layer.Detect(head)
		rc, err = ls.img.VerifyLayer(i, br)
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
			ls.maps[i] = &layer.Map{Access: layer.AccessDirect, Size: ls.img.Layers[i].Size}
		} else {
			rec = &layer.Recorder{Spill: func() (*os.File, error) {
				f, err := ls.newSpill(opts)
				ls.spills[i] = f
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
				ls.content[i] = blobSpan{blob}
			}
		} else {
			sp, err := layer.NewSpool(opts.TempDir)
			if err != nil {
				return scanResult{err: err}
			}
			ls.spools[i] = sp
			ls.content[i] = spoolSpan{sp}
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
	if sp := ls.spools[i]; sp != nil {
		if err := sp.Flush(); err != nil {
			return scanResult{err: err}
		}
	}
	if rec != nil {
		m, err := rec.Map()
		if err != nil {
			return scanResult{err: err}
		}
		ls.maps[i] = m
		if f := ls.spills[i]; f != nil && m.Access != layer.AccessSpill {
			// The stream turned out to have resume points of its own.
			f.Close()
			if opts.CacheDir != "" {
				os.Remove(f.Name())
			}
			ls.spills[i] = nil
		}
	}
	return scanResult{changes: changes}
}

// newSpill creates the file a layer without resume points is re-encoded into: in the cache
// under a temporary name (save renames it), or else an unlinked file in TempDir.
func (ls *Layers) newSpill(opts Options) (*os.File, error) {
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

// adoptBlob follows the scan of a layer that arrived as a stream, once its file is known: it
// checks the file's size (its bytes were verified as the stream), and lets an uncompressed
// layer be read in place.
func (ls *Layers) adoptBlob(i int, opts Options) error {
	blob, err := ls.img.LayerBlob(i)
	if err != nil {
		return err
	}
	if opts.Content && opts.Spool && ls.content[i] == nil {
		ls.content[i] = blobSpan{blob}
	}
	return nil
}
