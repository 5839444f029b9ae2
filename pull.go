package ocirender

import (
	"context"
	"os"
	"path/filepath"

	"github.com/ocirender/ocirender/image"
	"github.com/ocirender/ocirender/pull"
)

// Pull fetches the image ref from its registry and converts it as spec says. The layers are
// downloaded opts.Jobs at once, newest first, into opts.BlobDir, and a Packer scans each one
// as soon as it is complete and verified, so the conversion overlaps the downloads.
//
// opts.BlobDir "" means the blobs directory of spec.Open.CacheDir, where later pulls find
// them, or with no cache a temporary directory removed before Pull returns. When every blob
// is at hand already, the image is opened as Open would (through the index cache).
//
// With spec.Format "", nothing is written: Pull returns the merged image, open for reads;
// close it. Otherwise it returns nil.
func Pull(ctx context.Context, ref string, spec Spec, opts pull.Options) (_ *Image, err error) {
	if err := spec.check(); err != nil {
		return nil, err
	}
	if opts.Platform == "" {
		opts.Platform = spec.Open.Platform
	}
	if opts.BlobDir == "" {
		if spec.Open.CacheDir != "" {
			opts.BlobDir = filepath.Join(spec.Open.CacheDir, "blobs")
		} else {
			// No cache: the blobs live as long as the call. Files the image keeps open
			// outlive the directory's removal.
			tmp, err := os.MkdirTemp(spec.Open.TempDir, "ocirender-blobs-")
			if err != nil {
				return nil, err
			}
			defer os.RemoveAll(tmp)
			opts.BlobDir = tmp
		}
	}
	r, err := pull.Resolve(ctx, ref, opts)
	if err != nil {
		return nil, err
	}
	return PullRemote(ctx, r, spec)
}

// PullRemote is Pull of an image already resolved (by pull.Resolve, whose Options.BlobDir
// must be set).
func PullRemote(ctx context.Context, r *pull.Remote, spec Spec) (_ *Image, err error) {
	if err := spec.check(); err != nil {
		return nil, err
	}
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
	if err := r.Fetch(ctx, p.LayerReady); err != nil {
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
