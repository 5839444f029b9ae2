package layer

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"sync"
	"testing"
)

// assertEmptyDir fails when dir holds anything: a spool must never be visible.
func assertEmptyDir(t *testing.T, dir, when string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("%s: %s is in the spool directory", when, e.Name())
	}
}

// checkReadAt compares ReadAt at several offsets and lengths with want.
func checkReadAt(t *testing.T, s *Spool, want []byte, rng *rand.Rand) {
	t.Helper()
	size := int64(len(want))
	if got := s.Size(); got != size {
		t.Fatalf("Size() = %d, want %d", got, size)
	}
	for range 50 {
		off := rng.Int64N(size + 1)
		n := rng.IntN(3 << 20)
		p := make([]byte, n)
		got, err := s.ReadAt(p, off)
		wantN := min(int64(n), size-off)
		if int64(got) != wantN {
			t.Fatalf("ReadAt(%d bytes, %d) = %d, %v; want %d", n, off, got, err, wantN)
		}
		if wantN < int64(n) && err != io.EOF {
			t.Fatalf("ReadAt(%d bytes, %d) past the end: error %v, want io.EOF", n, off, err)
		}
		if wantN == int64(n) && err != nil {
			t.Fatalf("ReadAt(%d bytes, %d) = %v", n, off, err)
		}
		if !bytes.Equal(p[:got], want[off:off+int64(got)]) {
			t.Fatalf("ReadAt(%d bytes, %d): wrong bytes", n, off)
		}
	}
}

func TestSpoolRoundTrip(t *testing.T) {
	dir := t.TempDir()
	s, err := NewSpool(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	assertEmptyDir(t, dir, "after NewSpool")
	rng := rand.New(rand.NewPCG(1, 2))
	data := layerLike(9<<20, 21)
	written := 0
	for written < len(data) {
		var n int
		switch rng.IntN(4) {
		case 0:
			n = 512 // a tar header
		case 1:
			n = rng.IntN(100)
		case 2:
			n = rng.IntN(200 << 10)
		default:
			n = rng.IntN(3 << 20) // larger than the buffer: written directly
		}
		n = min(n, len(data)-written)
		if got, err := s.Write(data[written : written+n]); got != n || err != nil {
			t.Fatalf("Write(%d bytes) = %d, %v", n, got, err)
		}
		written += n
		if rng.IntN(8) == 0 {
			checkReadAt(t, s, data[:written], rng) // reads see unflushed bytes too
		}
	}
	checkReadAt(t, s, data, rng)
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	checkReadAt(t, s, data, rng)
	assertEmptyDir(t, dir, "after writing")

	// The file holds everything, for copy_file_range and friends.
	f := s.File()
	got := make([]byte, len(data))
	if _, err := f.ReadAt(got, 0); err != nil || !bytes.Equal(got, data) {
		t.Errorf("File().ReadAt = %v, or wrong bytes", err)
	}
	if fi, err := f.Stat(); err != nil || fi.Size() != int64(len(data)) {
		t.Errorf("File().Stat() = %v, %v; want size %d", fi, err, len(data))
	}

	if err := s.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	assertEmptyDir(t, dir, "after Close")
	if _, err := s.ReadAt(make([]byte, 1), 0); !errors.Is(err, os.ErrClosed) {
		t.Errorf("ReadAt after Close = %v, want os.ErrClosed", err)
	}
	if _, err := s.Write([]byte("x")); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Write after Close = %v, want os.ErrClosed", err)
	}
}

func TestSpoolEdges(t *testing.T) {
	s, err := NewSpool(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n, err := s.ReadAt(make([]byte, 10), 0); n != 0 || err != io.EOF {
		t.Errorf("ReadAt on an empty spool = %d, %v; want 0, io.EOF", n, err)
	}
	if n, err := s.ReadAt(nil, 0); n != 0 || err != nil {
		t.Errorf("ReadAt(nil, 0) = %d, %v; want 0, nil", n, err)
	}
	if _, err := s.ReadAt(make([]byte, 1), -1); err == nil {
		t.Error("ReadAt at a negative offset succeeded")
	}
	s.Write([]byte("hello"))
	p := make([]byte, 10)
	if n, err := s.ReadAt(p, 3); n != 2 || err != io.EOF || string(p[:n]) != "lo" {
		t.Errorf("ReadAt across the end = %d, %v, %q; want 2, io.EOF, \"lo\"", n, err, p[:n])
	}
}

func TestSpoolDefaultDir(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	s, err := NewSpool("")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	assertEmptyDir(t, os.TempDir(), "NewSpool(\"\")")
}

func TestSpoolMissingDir(t *testing.T) {
	if _, err := NewSpool(t.TempDir() + "/missing"); err == nil {
		t.Error("NewSpool in a missing directory succeeded")
	}
}

func TestSpoolWithoutTmpfile(t *testing.T) {
	// Where O_TMPFILE is not available the file is created and unlinked.
	saved := openUnnamed
	openUnnamed = func(string) (*os.File, error) { return nil, errors.ErrUnsupported }
	defer func() { openUnnamed = saved }()
	dir := t.TempDir()
	s, err := NewSpool(dir)
	if err != nil {
		t.Fatal(err)
	}
	assertEmptyDir(t, dir, "fallback spool")
	s.Write([]byte("fallback"))
	p := make([]byte, 8)
	if _, err := s.ReadAt(p, 0); err != nil || string(p) != "fallback" {
		t.Errorf("ReadAt = %q, %v", p, err)
	}
	s.Close()
}

// TestSpoolConcurrentReads reads while another goroutine writes; run it
// with -race.
func TestSpoolConcurrentReads(t *testing.T) {
	s, err := NewSpool(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	data := layerLike(6<<20, 22)
	var wg sync.WaitGroup
	done := make(chan struct{})
	for r := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(r), 7))
			p := make([]byte, 100<<10)
			for {
				select {
				case <-done:
					return
				default:
				}
				size := s.Size()
				if size == 0 {
					continue
				}
				off := rng.Int64N(size)
				n, err := s.ReadAt(p, off)
				if err != nil && err != io.EOF {
					t.Errorf("ReadAt = %v", err)
					return
				}
				if !bytes.Equal(p[:n], data[off:off+int64(n)]) {
					t.Errorf("ReadAt(%d) during writes: wrong bytes", off)
					return
				}
			}
		}()
	}
	for i := 0; i < len(data); i += 4096 + 17 {
		s.Write(data[i:min(i+4096+17, len(data))])
	}
	close(done)
	wg.Wait()
}
