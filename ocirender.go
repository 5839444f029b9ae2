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
	"context"
	"errors"
	"fmt"
	"io"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ocirender/ocirender/export"
	"github.com/ocirender/ocirender/image"
	"github.com/ocirender/ocirender/index"
	"github.com/ocirender/ocirender/internal/assembly"
	"github.com/ocirender/ocirender/layer"
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

	// CacheDir, when set, is the index cache (see PruneCache): an image scanned once is
	// opened from there next time without reading its layers. "" disables the cache.
	CacheDir string
	// ReadCache holds decoded spans and live decoders for the layer readers; nil gives the
	// image one of layer.DefaultCacheBudget.
	ReadCache *layer.ReadCache

	// Workers bounds the layers scanned at once; 0 = GOMAXPROCS.
	Workers int

	// Events, when set, receives the start, progress and end of each layer's scan and the
	// progress of an export (LayerTotals sums the scans up for a single progress line).
	// Calls come from many goroutines at once: keep it cheap and safe.
	Events func(Event)
	// Notice, when set, receives one-line remarks that are not errors: a cache entry found
	// unusable and rebuilt, say.
	Notice func(msg string)
}

func (o Options) assembly() assembly.Options {
	return assembly.Options{Content: o.Content, Spool: o.Spool, TempDir: o.TempDir, CacheDir: o.CacheDir,
		ReadCache: o.ReadCache, Workers: o.Workers, Events: o.Events, Notice: o.Notice}
}

func notice(opts Options, format string, args ...any) {
	if opts.Notice != nil {
		opts.Notice(fmt.Sprintf(format, args...))
	}
}

// Image is an opened image: the merged index, what the image's documents say, and (with
// Options.Content) readers of every layer's uncompressed stream.
type Image struct {
	Index *index.Index
	// Cached reports whether the index came from the cache rather than from a scan.
	Cached bool

	img *image.Image
	ls  *assembly.Layers
}

// Path is what was opened: the layout or archive, or for a pulled image its reference.
func (im *Image) Path() string { return im.img.Path }

// ID is the image's stable identity, "sha256:<64hex>" (its manifest digest when that is
// sha256; see image.Open).
func (im *Image) ID() string { return im.img.ID }

// Ref is the ref name or RepoTag the image was picked by ("" if none).
func (im *Image) Ref() string { return im.img.Ref }

// Config is the image's parsed configuration.
func (im *Image) Config() v1.Image { return im.img.Config }

// Layers are the layers' descriptors, base first: Index entries name them by position.
func (im *Image) Layers() []image.Layer { return im.img.Layers }

// Content returns readers of the layers' uncompressed streams, for export (nil without
// Options.Content).
func (im *Image) Content() export.Layers {
	if im.ls == nil {
		return nil
	}
	return im.ls.Content()
}

// LayerMap returns the random-access map of layer i: the length of its uncompressed stream
// and where decoding can resume. It is nil when Open recorded none (no CacheDir, and Content
// without readers or not at all).
func (im *Image) LayerMap(i int) *layer.Map { return im.ls.Map(i) }

// Close releases the layer readers, spools and the image files.
func (im *Image) Close() error {
	return errors.Join(im.ls.Close(), im.img.Close())
}

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
func OpenImage(ctx context.Context, img *image.Image, opts Options) (*Image, error) {
	ls, ix, cached, err := assembly.Open(ctx, img, opts.assembly())
	if err != nil {
		img.Close()
		return nil, err
	}
	return &Image{Index: ix, Cached: cached, img: img, ls: ls}, nil
}

// OpenFile returns a reader of the regular file at path in the merged tree, following
// symlinks inside the image (chroot-style) unless noFollow, and its entry. The image must
// have been opened with Options.Content.
func (im *Image) OpenFile(path string, noFollow bool) (*io.SectionReader, index.Entry, error) {
	id, err := im.Index.Resolve(path, !noFollow)
	if err != nil {
		return nil, index.Entry{}, fmt.Errorf("%s: %s: %w", im.Path(), path, err)
	}
	e := im.Index.Entry(id)
	if e.Type != index.Reg {
		what := map[index.Type]string{index.Dir: "a directory", index.Symlink: "a symlink",
			index.Char: "a character device", index.Block: "a block device", index.Fifo: "a fifo",
			index.Socket: "a socket"}[e.Type]
		return nil, e, fmt.Errorf("%s: %s: is %s, not a regular file", im.Path(), path, what)
	}
	r, err := im.Content().File(&e.Inode)
	if err != nil {
		return nil, e, fmt.Errorf("%s: %s: the image was opened without its content (%w)", im.Path(), path, err)
	}
	return r, e, nil
}
