package image

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"sync"
)

// A member is a named file of a layout: the span [off, off+size) of f.
// For a directory layout that is a whole file; for an archive, part of it.
type member struct {
	f         *os.File
	off, size int64
}

// readAt reads from the member, relative to its start; io.EOF past its end.
func (m member) readAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errorf(ErrInvalid, "negative offset %d", off)
	}
	if off >= m.size {
		return 0, io.EOF
	}
	short := false
	if rest := m.size - off; int64(len(p)) > rest {
		p, short = p[:rest], true
	}
	n, err := m.f.ReadAt(p, m.off+off)
	if err == io.EOF {
		// The file ended inside the span: it shrank under us.
		return n, io.ErrUnexpectedEOF
	}
	if err == nil && short {
		err = io.EOF
	}
	return n, err
}

// A store finds the members of one layout. Names passed to open are clean
// (see cleanName). Members and their files stay valid until close.
type store interface {
	open(name string) (member, error)
	close() error
}

// cleanName turns a member name from untrusted input into the canonical
// slash-separated form: "./" and leading "/" are dropped, "//" and "x/.."
// are resolved. A name that is empty or escapes the root after cleaning is
// an error.
func cleanName(name string) (string, error) {
	if strings.IndexByte(name, 0) >= 0 {
		return "", errorf(ErrInvalid, "name %.120q: contains NUL", name)
	}
	c := path.Clean("/" + name)[1:]
	if c == "" {
		return "", errorf(ErrInvalid, "name %.120q: empty", name)
	}
	// Clean("/"+x) can never keep a leading "..", so escape shows up as a
	// change in meaning: check the raw name the slow way.
	depth := 0
	for _, el := range strings.Split(name, "/") {
		switch el {
		case "", ".":
		case "..":
			depth--
			if depth < 0 {
				return "", errorf(ErrInvalid, "name %.120q: escapes the image root", name)
			}
		default:
			depth++
		}
	}
	return c, nil
}

// openFiles keeps the files a store opened, each once, until close: Blob hands the *os.File
// to callers.
type openFiles struct {
	mu    sync.Mutex
	files map[string]member
	done  bool
}

// get returns the member called name, opening it on first use: stat (which must not block,
// so that a FIFO planted in a layout is refused before it is opened) must report a regular
// file, and so must the opened file. what names it in errors.
func (c *openFiles) get(name, what string, stat func() (fs.FileInfo, error), open func() (*os.File, error)) (member, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done {
		return member{}, os.ErrClosed
	}
	if m, ok := c.files[name]; ok {
		return m, nil
	}
	fi, err := stat()
	if err != nil {
		return member{}, describeOpenError(what, err)
	}
	if !fi.Mode().IsRegular() {
		return member{}, errorf(ErrInvalid, "%s: not a regular file (%s)", what, fi.Mode().Type())
	}
	f, err := open()
	if err != nil {
		return member{}, describeOpenError(what, err)
	}
	if fi, err = f.Stat(); err != nil {
		f.Close()
		return member{}, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return member{}, errorf(ErrInvalid, "%s: not a regular file (%s)", what, fi.Mode().Type())
	}
	m := member{f: f, size: fi.Size()}
	if c.files == nil {
		c.files = make(map[string]member)
	}
	c.files[name] = m
	return m, nil
}

// close closes the files; later gets fail. It reports whether this call closed them.
func (c *openFiles) close() (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done {
		return false, nil
	}
	c.done = true
	var errs []error
	for _, m := range c.files {
		errs = append(errs, m.f.Close())
	}
	c.files = nil
	return true, errors.Join(errs...)
}

// dirStore is a layout directory. Files are opened through an os.Root, so
// neither a name nor a symlink inside the layout can reach outside it.
type dirStore struct {
	root  *os.Root
	files openFiles
}

func openDirStore(dir string) (*dirStore, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	return &dirStore{root: root}, nil
}

func (s *dirStore) open(name string) (member, error) {
	return s.files.get(name, name, func() (fs.FileInfo, error) { return s.root.Stat(name) },
		func() (*os.File, error) { return s.root.Open(name) })
}

func describeOpenError(name string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return errorf(ErrNotFound, "%s: missing", name)
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		// os.Root reports escapes as "path escapes from parent".
		return errorf(ErrInvalid, "%s: %v", name, pe.Err)
	}
	return err
}

func (s *dirStore) close() error {
	if closed, err := s.files.close(); !closed || err != nil {
		return err
	}
	return s.root.Close()
}

// readMember reads a whole member of at most limit bytes.
func readMember(m member, limit int64) ([]byte, error) {
	if m.size > limit {
		return nil, errorf(ErrInvalid, "%d bytes, more than the %d allowed", m.size, limit)
	}
	buf := make([]byte, m.size)
	n, err := m.readAt(buf, 0)
	if err == io.EOF && int64(n) == m.size {
		err = nil
	}
	if err != nil {
		return nil, err
	}
	return buf, nil
}
