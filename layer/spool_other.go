//go:build !linux

package layer

import (
	"errors"
	"os"
)

// openAnonymous has no unnamed files to offer outside Linux; NewSpool falls
// back to creating a file and unlinking it at once.
func openAnonymous(dir string) (*os.File, error) {
	return nil, errors.ErrUnsupported
}
