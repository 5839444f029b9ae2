package layer

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

// spoolBufferSize is how much a Spool gathers before writing to its file:
// large writes keep the system call count low even when the scan hands it a
// 512-byte tar header at a time.
const spoolBufferSize = 1 << 20

// A Spool keeps a layer's uncompressed stream in an anonymous temporary file
// and gives random access to it. It is the tee target while a layer is
// scanned; afterwards exports read file contents back with ReadAt, or hand
// File to copy_file_range or sendfile.
//
// The file has no name from the start (O_TMPFILE, or created and unlinked at
// once where that is unsupported), so nothing is left behind, even after a
// crash. Its space is freed by Close. Put dir on a disk, not a tmpfs, for
// large images.
//
// Writes are buffered. ReadAt sees every byte written so far, flushed or not,
// and may be called concurrently with Write and with other ReadAt calls.
// Write itself is meant for one writer at a time.
type Spool struct {
	mu      sync.Mutex
	f       *os.File
	buf     []byte // bytes written after the first flushed bytes, not yet in f
	flushed int64  // bytes in f
	err     error  // first write error, or os.ErrClosed; sticky
}

// openUnnamed is openAnonymous; tests replace it to exercise the fallback.
var openUnnamed = openAnonymous

// NewSpool creates an empty spool in dir; "" means os.TempDir().
func NewSpool(dir string) (*Spool, error) {
	if dir == "" {
		dir = os.TempDir()
	}
	f, err := openUnnamed(dir)
	if err != nil {
		// No O_TMPFILE here (old kernel, some filesystems, not Linux):
		// create a file and unlink it before anything else happens.
		f, err = os.CreateTemp(dir, ".ocirender-spool-*")
		if err != nil {
			return nil, fmt.Errorf("layer: creating spool: %w", err)
		}
		if err := os.Remove(f.Name()); err != nil {
			f.Close()
			return nil, fmt.Errorf("layer: creating spool: %w", err)
		}
	}
	return &Spool{f: f}, nil
}

// Write appends p to the spool.
func (s *Spool) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return 0, s.err
	}
	if len(s.buf) == 0 && len(p) >= spoolBufferSize {
		// Nothing pending and p alone fills a buffer: skip the copy.
		return s.writeFile(p)
	}
	if s.buf == nil {
		s.buf = make([]byte, 0, spoolBufferSize)
	}
	n := 0
	for len(p) > 0 {
		c := copy(s.buf[len(s.buf):cap(s.buf)], p)
		s.buf = s.buf[:len(s.buf)+c]
		p = p[c:]
		n += c
		if len(s.buf) == cap(s.buf) {
			if err := s.flushLocked(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// writeFile appends p to the file; s.buf must be empty.
func (s *Spool) writeFile(p []byte) (int, error) {
	n, err := s.f.WriteAt(p, s.flushed)
	s.flushed += int64(n)
	if err != nil {
		s.err = fmt.Errorf("layer: writing spool: %w", err)
		return n, s.err
	}
	return n, nil
}

func (s *Spool) flushLocked() error {
	if s.err != nil {
		return s.err
	}
	if len(s.buf) == 0 {
		return nil
	}
	n, err := s.writeFile(s.buf)
	// Keep what did not make it, so the bytes stay readable.
	s.buf = s.buf[:copy(s.buf, s.buf[n:])]
	return err
}

// Flush writes buffered bytes to the file.
func (s *Spool) Flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.flushLocked()
}

// ReadAt reads len(p) bytes at offset off of the uncompressed stream, with
// the io.ReaderAt contract: fewer bytes only with an error, io.EOF at the end.
func (s *Spool) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("layer: spool read at negative offset")
	}
	s.mu.Lock()
	if s.err == os.ErrClosed {
		s.mu.Unlock()
		return 0, os.ErrClosed
	}
	flushed := s.flushed
	size := flushed + int64(len(s.buf))
	if off >= size {
		s.mu.Unlock()
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	end := min(off+int64(len(p)), size)
	if end > flushed {
		// The tail is still in the buffer, which a Write may change: copy it
		// under the lock.
		start := max(off, flushed)
		copy(p[start-off:end-off], s.buf[start-flushed:end-flushed])
	}
	f := s.f
	s.mu.Unlock()

	// Bytes below flushed never change again, so pread needs no lock.
	if off < flushed {
		want := min(end, flushed) - off
		n, err := f.ReadAt(p[:want], off)
		if int64(n) < want {
			if err == io.EOF || err == nil {
				err = io.ErrUnexpectedEOF // the file lost bytes it had
			}
			return n, fmt.Errorf("layer: reading spool: %w", err)
		}
	}
	n := int(end - off)
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// Size returns the number of bytes written so far.
func (s *Spool) Size() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.flushed + int64(len(s.buf))
}

// File flushes the buffer and returns the spool's file, for fast paths such
// as copy_file_range and sendfile. Use it only with explicit offsets (pread,
// copy_file_range with an offset pointer): the file offset is unspecified.
// The file belongs to the spool: do not write to it or close it, and do not
// use it after Close.
func (s *Spool) File() *os.File {
	s.Flush() // a failure is sticky and reported by Write; the file holds what it holds
	return s.f
}

// Close releases the file and with it the disk space. Close is idempotent.
func (s *Spool) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == os.ErrClosed {
		return nil
	}
	s.err = os.ErrClosed
	s.buf = nil
	return s.f.Close()
}
