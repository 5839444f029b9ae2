package export_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ocirender/ocirender/export"
)

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "out")
	write := func(s string) func(io.Writer) error {
		return func(w io.Writer) error { _, err := io.WriteString(w, s); return err }
	}
	if err := export.WriteFileAtomic(context.Background(), p, write("one")); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := export.WriteFileAtomic(context.Background(), p, func(w io.Writer) error { write("partial")(w); return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("WriteFileAtomic = %v, want boom", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "one" {
		t.Errorf("after a failed write the file holds %q, want the old %q", b, "one")
	}
	if names, _ := os.ReadDir(dir); len(names) != 1 {
		t.Errorf("directory holds %d entries after a failed write, want only out", len(names))
	}
	if err := export.WriteFileAtomic(context.Background(), dir, write("x")); !errors.Is(err, export.ErrExists) {
		t.Errorf("WriteFileAtomic(a directory) = %v, want ErrExists", err)
	}
}

// TestWriteFileAtomicDevice: writing to a device or fifo writes into it and leaves it what it
// was; renaming a temporary file over /dev/null would have replaced the device.
func TestWriteFileAtomicDevice(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("no fifo: %v", err)
	}
	got := make(chan string)
	go func() {
		f, err := os.Open(fifo)
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(f)
		f.Close()
		got <- string(b)
	}()
	if err := export.WriteFileAtomic(context.Background(), fifo, func(w io.Writer) error {
		_, err := io.WriteString(w, "through the fifo")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if s := <-got; s != "through the fifo" {
		t.Errorf("fifo reader got %q", s)
	}
	var st unix.Stat_t
	if err := unix.Lstat(fifo, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
		t.Errorf("after the export %s is no longer a fifo (mode %o, %v)", fifo, st.Mode, err)
	}
	if err := unix.Stat(os.DevNull, &st); err == nil && st.Mode&unix.S_IFMT == unix.S_IFCHR {
		if err := export.WriteFileAtomic(context.Background(), os.DevNull, func(w io.Writer) error {
			_, err := io.WriteString(w, strings.Repeat("x", 1000))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if unix.Stat(os.DevNull, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR {
			t.Fatalf("/dev/null is no longer a character device")
		}
	}
}
