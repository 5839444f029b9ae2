package index

import (
	"errors"
	"fmt"
	"io"
)

// Content gives the bytes of an image's layers: Content[i] reads layer i's uncompressed tar
// stream, the stream whose offsets the inodes' content locators (Layer, Offset, Size) name.
// A nil reader is a layer whose content is not at hand. Readers must be safe for concurrent
// use (as *os.File's ReadAt is).
//
// Every reader of file content (exports, the FUSE view, verify, cat) goes through File, so
// the locator is read in one place.
type Content []io.ReaderAt

// ErrNoContent marks a file whose layer has no reader in a Content.
var ErrNoContent = errors.New("no content for layer")

// File returns a reader of the data of the regular file in: in.Size bytes of layer in.Layer
// from in.Offset on. An empty file needs no layer.
func (c Content) File(in *Inode) (*io.SectionReader, error) {
	if in.Size == 0 {
		return io.NewSectionReader(noBytes{}, 0, 0), nil
	}
	if in.Layer < 0 || in.Layer >= len(c) || c[in.Layer] == nil {
		return nil, fmt.Errorf("%w %d", ErrNoContent, in.Layer)
	}
	return io.NewSectionReader(c[in.Layer], in.Offset, in.Size), nil
}

type noBytes struct{}

func (noBytes) ReadAt([]byte, int64) (int, error) { return 0, io.EOF }
