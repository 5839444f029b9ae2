package ocirender

import (
	"context"
	"errors"
	"path/filepath"

	"github.com/ocirender/ocirender/image"
	"github.com/ocirender/ocirender/pull"
)

// Pull fetches the image ref from its registry and converts it as spec says. The layers are
// downloaded opts.Jobs at once, newest first, into opts.BlobDir, and a Packer scans each one
// while it downloads (Packer.LayerArriving), so the conversion overlaps the downloads.
//
// opts.BlobDir "" means the blobs directory of spec.Open.CacheDir, where later pulls find
// them, or with no cache a temporary directory removed before Pull returns (an image
// returned keeps its blob files open). When every blob
// is at hand already and spec.Open.CacheDir is set, the image is opened as Open would,
// through the index cache.
//
// With spec.Format "", nothing is written: Pull returns the merged image, open for reads;
// close it. Otherwise it returns nil.
func Pull(ctx context.Context, ref string, spec Spec, opts pull.Options) (_ *Image, err error) {
	if err := spec.Check(); err != nil {
		return nil, err
	}
	if opts.Platform == "" {
		opts.Platform = spec.Open.Platform
	}
	if opts.BlobDir == "" {
		opts.BlobDir = BlobDir(spec.Open.CacheDir)
	}
	r, err := pull.Resolve(ctx, ref, opts)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return PullRemote(ctx, r, spec)
}

// BlobDir is where pulls keep blobs in the cache at cacheDir: its blobs directory, or "" (a
// temporary directory of each pull) when cacheDir is "".
func BlobDir(cacheDir string) string {
	if cacheDir == "" {
		return ""
	}
	return filepath.Join(cacheDir, "blobs")
}

// PullRemote is Pull of an image already resolved by pull.Resolve; the caller closes r.
//
// A blob of the blob directory whose bytes turn out not to match its digest is removed and
// downloaded again, once.
func PullRemote(ctx context.Context, r *pull.Remote, spec Spec) (*Image, error) {
	if err := spec.Check(); err != nil {
		return nil, err
	}
	im, err := pullOnce(ctx, r, spec)
	if err != nil && errors.Is(err, image.ErrDigest) && ctx.Err() == nil {
		n, derr := r.DropCorrupt()
		if derr == nil && n > 0 {
			notice(spec.Open, "%d corrupt blobs of %s removed from the blob cache; downloading them again", n, r)
			return pullOnce(ctx, r, spec)
		}
	}
	return im, err
}

func pullOnce(ctx context.Context, r *pull.Remote, spec Spec) (_ *Image, err error) {
	img, err := image.FromManifest(r.String(), r.Manifest, r.Config, image.Options{Platform: spec.Open.Platform, Ref: r.String()})
	if err != nil {
		return nil, err
	}
	if spec.Open.CacheDir != "" && haveAll(r) {
		for i := range r.Layers {
			if err := img.SetLayerFile(i, r.BlobPath(i)); err != nil {
				img.Close()
				return nil, err
			}
		}
		im, err := OpenImage(ctx, img, spec.openOptions())
		if err != nil || spec.Format == "" {
			return im, err
		}
		defer im.Close()
		return nil, im.Export(ctx, spec)
	}
	p, err := NewPacker(ctx, img, spec)
	if err != nil {
		return nil, err
	}
	// A failure of the conversion stops the downloads, and with them the scans reading them.
	fctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := context.AfterFunc(p.a.Context(), func() { cancel(context.Cause(p.a.Context())) })
	defer stop()
	if err := r.Fetch(fctx, p.LayerReady, p.LayerArriving); err != nil {
		p.Fail(err)
	}
	if err := p.Close(); err != nil {
		return nil, err
	}
	return p.Image(), nil
}

func haveAll(r *pull.Remote) bool {
	for i := range r.Layers {
		if !r.Have(i) {
			return false
		}
	}
	return true
}
