package export

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"sync"
	"sync/atomic"
)

// DirOptions tune Dir. The zero value works.
type DirOptions struct {
	// Workers is the number of goroutines writing file content; 0 means GOMAXPROCS.
	Workers int
	// Notice, when set, receives one-line notices about what the export could not reproduce
	// and skipped: ownership and device nodes when not root, xattr namespaces the target
	// refuses. Each kind is reported once. Calls never overlap.
	Notice func(msg string)
	// Progress, when set, is called now and then with the bytes of file content written so
	// far, and once at the end. Calls never overlap and the values never decrease.
	Progress func(written int64)
}

// CheckDirDest returns nil when dst does not exist or is an empty directory (not a symlink
// to one), and ErrExists when it is anything else.
func CheckDirDest(dst string) error {
	fi, err := os.Lstat(dst)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%w: %s", ErrExists, dst)
	}
	d, err := os.Open(dst)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	defer d.Close()
	if _, err := d.Readdirnames(1); err != io.EOF {
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		return fmt.Errorf("%w: %s is not empty", ErrExists, dst)
	}
	return nil
}

// validName reports whether name can be created in a directory as it is: one path component
// that neither climbs out ("..") nor names the directory itself. The overlay never produces
// anything else, but an index may come from elsewhere (a cache file), and a name with a slash
// handed to an *at syscall would walk out of the directory fd.
func validName(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.ContainsAny(name, "/\x00")
}

// notices hands each kind of notice to fn once, from any goroutine.
type notices struct {
	mu   sync.Mutex
	seen map[string]bool
	fn   func(string)
}

func (n *notices) once(kind, msg string) {
	if n.fn == nil {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.seen[kind] {
		return
	}
	if n.seen == nil {
		n.seen = map[string]bool{}
	}
	n.seen[kind] = true
	n.fn(msg)
}

// progress counts content bytes written by many goroutines and reports them to fn every
// progressStep bytes, one call at a time, never going backwards.
type progress struct {
	fn       func(int64)
	written  atomic.Int64
	next     atomic.Int64 // total at which to report next
	mu       sync.Mutex
	reported int64
}

const progressStep = 8 << 20

func (p *progress) add(n int64) {
	total := p.written.Add(n)
	if p.fn == nil || total < p.next.Load() {
		return
	}
	p.next.Store(total + progressStep)
	p.report()
}

func (p *progress) report() {
	if p.fn == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if total := p.written.Load(); total > p.reported || total == 0 {
		p.reported = total
		p.fn(total)
	}
}
