package ocirender

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/ocirender/ocirender/export"
	"github.com/ocirender/ocirender/internal/assembly"
	"github.com/ocirender/ocirender/squashfs"
)

// The output formats of a Spec.
const (
	FormatTar      = "tar"
	FormatDir      = "dir"
	FormatSquashfs = "squashfs"
)

// Spec says what Convert, Image.Export and a Packer write: the format, where to, the options
// of that format, and how to open the image.
type Spec struct {
	Format string // FormatTar, FormatDir or FormatSquashfs
	// Path is the output file (tar, squashfs) or directory (dir). It is written under a
	// temporary name and renamed at the end; an existing file or non-empty directory is an
	// error for dir, and replaced for tar and squashfs.
	Path string
	// Writer, for tar only and instead of Path, receives the stream.
	Writer io.Writer

	Tar      export.TarOptions
	Dir      export.DirOptions
	Squashfs squashfs.Options

	// Open says how to open the image (Convert) and where to keep what a scan makes
	// (Convert and Packer). Content is implied.
	Open Options
}

// ErrSpec marks a Spec that asks for something impossible: an unknown format, a stream of a
// format that needs a file, no output at all. Check's errors for those wrap it; an existing
// destination (export.ErrExists) does not.
var ErrSpec = errors.New("bad output")

// Check is where a Spec's output is validated, for Convert, Export, Packer and Pull alike
// (and for a command line before it does any work): the format, the Path or Writer it
// needs, and that a directory's destination does not exist yet. Format "" (no output) is
// valid for Packer and Pull.
func (s *Spec) Check() error {
	switch s.Format {
	case "":
		return nil
	case FormatTar:
		if (s.Path == "") == (s.Writer == nil) {
			return fmt.Errorf("ocirender: %w: a tar output needs a Path or a Writer, not both", ErrSpec)
		}
		return nil
	case FormatDir, FormatSquashfs:
		if s.Path == "" || s.Writer != nil {
			return fmt.Errorf("ocirender: %w: a %s output needs a Path: it cannot be streamed to a Writer such as stdout", ErrSpec, s.Format)
		}
		if s.Format == FormatDir {
			return export.CheckDirDest(s.Path)
		}
		return nil
	}
	return fmt.Errorf("ocirender: %w: unknown format %q (want tar, dir or squashfs)", ErrSpec, s.Format)
}

// openOptions are the options the image is opened with: content is read, and a scan spools
// it when it is to be exported once.
func (s *Spec) openOptions() Options {
	o := s.Open
	o.Content = true
	o.Spool = s.Format != ""
	return o
}

// Convert opens the image at path (spec.Open says which image of the layout, and where the
// index cache is) and writes it out as spec says.
func Convert(ctx context.Context, path string, spec Spec) error {
	if spec.Format == "" {
		return fmt.Errorf("ocirender: %w: Convert needs an output format", ErrSpec)
	}
	if err := spec.Check(); err != nil {
		return err
	}
	img, err := Open(ctx, path, spec.openOptions())
	if err != nil {
		return err
	}
	defer img.Close()
	return img.Export(ctx, spec)
}

// Export writes the image out as spec says (spec.Open does not apply). The image must have
// been opened with Options.Content.
func (im *Image) Export(ctx context.Context, spec Spec) error {
	if err := spec.Check(); err != nil {
		return err
	}
	if im.Content() == nil {
		return errors.New("ocirender: Export of an image opened without Options.Content")
	}
	total := im.Index.ContentSize()
	progress := func(f func(int64)) func(int64) {
		if f != nil || spec.Open.Events == nil {
			return f
		}
		return func(n int64) { spec.Open.Events(Event{Kind: Writing, Layer: -1, Done: n, Total: total}) }
	}
	switch spec.Format {
	case FormatSquashfs:
		opts := spec.Squashfs
		opts.Progress = progress(opts.Progress)
		return export.WriteFileAtomic(ctx, spec.Path, func(w io.Writer) error {
			wa, ok := w.(io.WriterAt)
			if !ok {
				return fmt.Errorf("export: squashfs needs a seekable output")
			}
			return squashfs.Write(ctx, wa, im.Index, im.Content(), opts)
		})
	case FormatTar:
		opts := spec.Tar
		opts.Progress = progress(opts.Progress)
		if spec.Writer != nil {
			return export.Tar(ctx, spec.Writer, im.Index, im.Content(), opts)
		}
		return export.WriteFileAtomic(ctx, spec.Path, func(w io.Writer) error {
			return export.Tar(ctx, w, im.Index, im.Content(), opts)
		})
	case FormatDir:
		opts := spec.Dir
		opts.Progress = progress(opts.Progress)
		return export.Dir(ctx, spec.Path, im.Index, im.Content(), opts)
	}
	return errors.New("ocirender: Export needs an output format")
}

// EventKind says what an Event reports.
type EventKind = assembly.EventKind

// The kinds of Event.
const (
	LayerStarted  = assembly.LayerStarted  // the scan of Layer began; Total is its blob's size
	LayerProgress = assembly.LayerProgress // Done of Total bytes of Layer's blob are read
	LayerScanned  = assembly.LayerScanned  // the scan of Layer ended, with Err if it failed
	Writing       = assembly.Writing       // Done of Total bytes of file content are written out (Layer -1)
	Finished      = assembly.Finished      // a Packer's work is complete (Layer -1)
	Scanning      = assembly.Scanning      // Done of Total bytes of all the layers' blobs are read (Layer -1)
)

// An Event reports progress to Options.Events: Kind, the Layer it concerns (-1 for the
// whole image), Done of Total bytes, and Err for a scan that failed.
type Event = assembly.Event
