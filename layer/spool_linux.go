package layer

import (
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// openAnonymous opens an unnamed regular file in dir (O_TMPFILE): it never
// appears in the directory, so no crash can leave it behind.
func openAnonymous(dir string) (*os.File, error) {
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, &os.PathError{Op: "open O_TMPFILE", Path: dir, Err: err}
	}
	return os.NewFile(uintptr(fd), filepath.Join(dir, "(layer spool)")), nil
}
