//go:build !linux

package export

import (
	"context"
	"errors"

	"github.com/ocirender/ocirender/index"
)

// Dir needs Linux's *at system calls to write safely inside the target.
func Dir(ctx context.Context, dst string, ix *index.Index, layers Layers, opts DirOptions) error {
	return errors.New("export: directory export is only supported on Linux")
}
