// Package export writes the merged tree of an index out as a tar stream or a directory (and,
// in its squashfs subpackage, a squashfs image). Every sink is driven by the index alone and
// reads file content through the layer readers it is handed, so all outputs of one image agree.
//
// Outputs that are files or directories are written under a temporary name next to the
// destination and renamed into place at the end: a failed or interrupted export leaves nothing
// behind. Export knows nothing of FUSE, image layouts or decompression.
package export

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/ocirender/ocirender/index"
)

// Layers gives the content of an image's layers (see index.Content): Layers[i] reads layer
// i's uncompressed tar stream. Readers must be safe for concurrent use.
type Layers = index.Content

// FileSpan is implemented by layer content that sits in a file at a fixed offset; sinks use it
// to copy inside the kernel (copy_file_range) instead of through user space.
type FileSpan interface {
	FileSpan() (f *os.File, base int64)
}

// ErrExists is returned when the destination of an export already exists.
var ErrExists = errors.New("export: destination exists")

// WriteFileAtomic creates path through a temporary file in the same directory, calls write,
// syncs and renames it into place. On any error, or if ctx is cancelled, the temporary file is
// removed and path is left untouched.
//
// A destination that exists and is not a regular file (/dev/null, /dev/stdout, a fifo) is
// written in place: renaming over it would replace a device with a file.
func WriteFileAtomic(ctx context.Context, path string, write func(w io.Writer) error) (err error) {
	if fi, err := os.Stat(path); err == nil && !fi.Mode().IsRegular() {
		if fi.IsDir() {
			return fmt.Errorf("%w: %s is a directory", ErrExists, path)
		}
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		if err := write(f); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err = write(f); err != nil {
		return err
	}
	if err = ctx.Err(); err != nil {
		return err
	}
	if err = f.Chmod(0o644); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return nil
}
