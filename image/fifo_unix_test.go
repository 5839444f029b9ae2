//go:build unix

package image

import (
	"errors"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestDirFIFO: a FIFO planted as a blob is refused, not opened (which
// would block forever).
func TestDirFIFO(t *testing.T) {
	b, m := simple(t)
	name := layerBlobName(t, b, m, 0)
	delete(b.files, name)
	dir := b.dir()
	if err := syscall.Mkfifo(filepath.Join(dir, filepath.FromSlash(name)), 0o644); err != nil {
		t.Skipf("no FIFOs here: %v", err)
	}
	im, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	done := make(chan error, 1)
	go func() { _, err := im.LayerBlob(0); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("LayerBlob(FIFO) = %v, want ErrInvalid", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("LayerBlob(FIFO) blocked")
	}
}
