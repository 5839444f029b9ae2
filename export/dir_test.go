package export_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ocirender/ocirender/export"
	"github.com/ocirender/ocirender/index"
	"github.com/ocirender/ocirender/internal/imagetest"
)

type F = imagetest.Entry

var (
	reg  = imagetest.Reg
	dir  = imagetest.Dir
	sym  = imagetest.Sym
	hard = imagetest.Hard
)

func mode(m int64) func(*F)   { return func(f *F) { f.Mode = m } }
func owner(u, g int) func(*F) { return func(f *F) { f.UID, f.GID = u, g } }
func node(t byte, maj, min int64) func(*F) {
	return func(f *F) { f.Type, f.Devmajor, f.Devminor = t, maj, min }
}
func xattr(kv ...string) func(*F) {
	return func(f *F) {
		f.Xattrs = map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			f.Xattrs[kv[i]] = kv[i+1]
		}
	}
}

// mtime gives fixture entry i its own mtime with a nanosecond part.
func mtime(i int) func(*F) {
	return func(f *F) { f.Mtime = time.Unix(1600000000+int64(i)*3607, int64(i)*1000003+7) }
}

// merge applies layers (each a list of entries) and returns the index and the raw layers.
func merge(t testing.TB, layers ...[]F) (*index.Index, [][]byte) {
	t.Helper()
	ix, raw, err := imagetest.Merge(layers...)
	if err != nil {
		t.Fatal(err)
	}
	return ix, raw
}

func readers(raw [][]byte) export.Layers {
	ls := make(export.Layers, len(raw))
	for i, b := range raw {
		ls[i] = bytes.NewReader(b)
	}
	return ls
}

// capability is a binary security.capability value (VFS_CAP_REVISION_2, cap_net_raw+ep).
const capability = "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"

// big is content larger than the copy buffer, with an odd tail.
var big = func() string {
	b := make([]byte, 3<<20+17)
	r := rand.NewChaCha8([32]byte{1})
	r.Read(b)
	return string(b)
}()

// everyType is an image with every file type, special mode bits, owners, xattrs (binary
// ones too), hard links across directories, read-only and closed directories, and a second
// layer that replaces and adds files.
func everyType(t testing.TB) (*index.Index, [][]byte) {
	return merge(t, []F{
		dir("./").With(mode(0o750)).With(owner(5, 6)).With(mtime(0)),
		dir("bin").With(mtime(1)),
		reg("bin/ping", "ping").With(mode(0o4755)).With(xattr("security.capability", capability)).With(mtime(2)),
		dir("dev").With(mtime(3)),
		reg("dev/null", "").With(node(tar.TypeChar, 1, 3)).With(mode(0o666)).With(mtime(4)),
		reg("dev/sda", "").With(node(tar.TypeBlock, 8, 0)).With(mode(0o660)).With(owner(0, 6)).With(mtime(5)),
		reg("dev/initctl", "").With(node(tar.TypeFifo, 0, 0)).With(mode(0o600)).With(xattr("trusted.fifo", "f")).With(mtime(6)),
		hard("dev/null2", "dev/null"),
		dir("etc").With(mtime(7)),
		reg("etc/passwd", "root:x:0:0").With(mtime(8)),
		reg("etc/shadow", "root:*:").With(mode(0o640)).With(owner(0, 42)).With(mtime(9)),
		dir("home/u").With(mode(0o700)).With(owner(1000, 1000)).With(xattr("user.dir", "d")).With(mtime(10)),
		reg("home/u/notes", "notes").With(mode(0o600)).With(owner(1000, 1000)).
			With(xattr("user.note", "v\x00\xff", "trusted.t", "t")).With(mtime(11)),
		sym("home/u/passwd", "../../etc/passwd").With(owner(1000, 1000)).With(mtime(12)),
		reg("home/u/empty", "").With(mtime(13)),
		dir("ro").With(mode(0o555)).With(mtime(14)),
		reg("ro/f", "read only").With(mode(0o444)).With(xattr("user.x", "1")).With(mtime(15)),
		dir("locked").With(mode(0)).With(mtime(16)),
		reg("locked/secret", "s").With(mode(0)).With(mtime(17)),
		dir("tmp").With(mode(0o1777)).With(mtime(18)),
		sym("abs", "/etc").With(xattr("trusted.sym", "s")).With(mtime(19)),
		hard("abs2", "abs"),
		reg("big", big).With(mtime(20)),
		dir("usr").With(mtime(21)),
		dir("usr/bin").With(mtime(22)),
		reg("usr/bin/sudo", "sudo").With(mode(0o4111)).With(mtime(23)),
		hard("usr/bin/sudoedit", "usr/bin/sudo"),
		hard("bin/sudo", "usr/bin/sudo"), // first in walk order, in another directory
		reg("usr/bin/wall", "wall").With(mode(0o2755)).With(owner(0, 5)).With(mtime(24)),
	}, []F{
		reg("etc/passwd", "root:x:0:0:root:/root:/bin/sh").With(mtime(25)),
		reg("usr/bin/newer", "layer 1").With(mode(0o755)).With(mtime(26)),
		dir("usr/bin").With(mtime(27)),
	})
}

// expect says what an export can reproduce.
type expect struct {
	root bool                // owners and device nodes
	skip func(p string) bool // entries not to look at
}

// checkTree compares every entry of ix with what is at the same path below out: type, mode,
// owner, device numbers, mtime (nanoseconds), link count, hard-link groups, xattrs, symlink
// targets and content.
func checkTree(t *testing.T, out string, ix *index.Index, raw [][]byte, want expect) {
	t.Helper()
	inodes := map[index.InodeID]uint64{}
	seen := map[uint64]index.InodeID{}
	uid, gid := uint32(os.Getuid()), uint32(os.Getgid())
	ix.Walk(index.Root, func(id index.ID, p string) error {
		if want.skip != nil && want.skip(p) {
			return nil
		}
		e := ix.Entry(id)
		full := filepath.Join(out, p)
		var st unix.Stat_t
		err := unix.Lstat(full, &st)
		device := e.Type == index.Char || e.Type == index.Block
		if device && !want.root {
			if err != unix.ENOENT {
				t.Errorf("%s: lstat = %v, want ENOENT (device nodes need root)", p, err)
			}
			return nil
		}
		if err != nil {
			t.Errorf("%s: %v", p, err)
			return nil
		}
		fmtWant := map[index.Type]uint32{index.Dir: unix.S_IFDIR, index.Reg: unix.S_IFREG,
			index.Symlink: unix.S_IFLNK, index.Char: unix.S_IFCHR, index.Block: unix.S_IFBLK,
			index.Fifo: unix.S_IFIFO, index.Socket: unix.S_IFSOCK}[e.Type]
		if st.Mode&unix.S_IFMT != fmtWant {
			t.Errorf("%s: type = %o, want %o (%s)", p, st.Mode&unix.S_IFMT, fmtWant, e.Type)
		}
		if e.Type != index.Symlink && st.Mode&0o7777 != e.Mode {
			t.Errorf("%s: mode = %04o, want %04o", p, st.Mode&0o7777, e.Mode)
		}
		wu, wg := e.UID, e.GID
		if !want.root {
			wu, wg = uid, gid
		}
		if st.Uid != wu || st.Gid != wg {
			t.Errorf("%s: owner = %d:%d, want %d:%d", p, st.Uid, st.Gid, wu, wg)
		}
		if device && (unix.Major(st.Rdev) != e.Devmajor || unix.Minor(st.Rdev) != e.Devminor) {
			t.Errorf("%s: device = %d,%d, want %d,%d", p, unix.Major(st.Rdev), unix.Minor(st.Rdev), e.Devmajor, e.Devminor)
		}
		if got := st.Mtim.Nano(); got != e.Mtime {
			t.Errorf("%s: mtime = %d, want %d", p, got, e.Mtime)
		}
		if uint32(st.Nlink) != e.Nlink {
			t.Errorf("%s: nlink = %d, want %d", p, st.Nlink, e.Nlink)
		}
		if ino, ok := inodes[e.Ino]; ok && ino != st.Ino {
			t.Errorf("%s: inode %d, want %d (hard link of %d)", p, st.Ino, ino, e.Ino)
		}
		if other, ok := seen[st.Ino]; ok && other != e.Ino {
			t.Errorf("%s: shares inode %d with another index inode", p, st.Ino)
		}
		inodes[e.Ino], seen[st.Ino] = st.Ino, e.Ino
		checkXattrs(t, full, p, &e, want)
		switch e.Type {
		case index.Symlink:
			if got, err := os.Readlink(full); err != nil || got != e.Link {
				t.Errorf("%s: readlink = %q, %v, want %q", p, got, err, e.Link)
			}
		case index.Reg:
			if !want.root && e.Mode&0o400 == 0 {
				break // not readable by its owner, and we are not root
			}
			got, err := os.ReadFile(full)
			if w := raw[e.Layer][e.Offset : e.Offset+e.Size]; err != nil || !bytes.Equal(got, w) {
				t.Errorf("%s: content = %d bytes %.20q, %v, want %d bytes %.20q", p, len(got), got, err, len(w), w)
			}
		}
		return nil
	})
}

func checkXattrs(t *testing.T, full, p string, e *index.Entry, want expect) {
	t.Helper()
	// What we can expect to see: everything as root, but user.* only on files and directories
	// (the kernel's rule); only user.* otherwise. security.selinux may come from the system.
	keep := func(name string) bool {
		if strings.HasPrefix(name, "user.") {
			return e.Type == index.Reg || e.Type == index.Dir
		}
		return want.root && name != "security.selinux"
	}
	wantX := map[string]string{}
	for _, x := range e.Xattrs {
		if keep(x.Name) {
			wantX[x.Name] = x.Value
		}
	}
	got := map[string]string{}
	buf := make([]byte, 64<<10)
	n, err := unix.Llistxattr(full, buf)
	if err != nil {
		t.Errorf("%s: listxattr: %v", p, err)
		return
	}
	for _, name := range strings.Split(string(buf[:n]), "\x00") {
		if name == "" || !keep(name) {
			continue
		}
		v := make([]byte, 64<<10)
		m, err := unix.Lgetxattr(full, name, v)
		if err != nil {
			t.Errorf("%s: getxattr %s: %v", p, name, err)
		}
		got[name] = string(v[:max(m, 0)])
	}
	if fmt.Sprint(got) != fmt.Sprint(wantX) {
		t.Errorf("%s: xattrs = %q, want %q", p, got, wantX)
	}
}

// noLeftovers fails unless parent holds exactly the names in want.
func noLeftovers(t *testing.T, parent string, want ...string) {
	t.Helper()
	des, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, de := range des {
		got = append(got, de.Name())
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s holds %q, want %q", parent, got, want)
	}
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for owners, device nodes and trusted.* xattrs; TestDirNotRoot covers the rest")
	}
}

func TestDir(t *testing.T) {
	needRoot(t)
	ix, raw := everyType(t)
	for _, workers := range []int{1, 4} {
		t.Run(fmt.Sprint("workers=", workers), func(t *testing.T) {
			parent := t.TempDir()
			out := filepath.Join(parent, "out")
			var notes []string
			var last int64
			err := export.Dir(context.Background(), out, ix, readers(raw), export.DirOptions{
				Workers:  workers,
				Notice:   func(m string) { notes = append(notes, m) },
				Progress: func(n int64) { last = n },
			})
			if err != nil {
				t.Fatalf("Dir = %v", err)
			}
			checkTree(t, out, ix, raw, expect{root: true})
			if len(notes) > 0 {
				t.Errorf("notices %q, want none as root", notes)
			}
			if want := contentBytes(ix); last != want {
				t.Errorf("last progress = %d, want %d", last, want)
			}
			noLeftovers(t, parent, "out")
		})
	}
}

func contentBytes(ix *index.Index) int64 {
	var n int64
	seen := map[index.InodeID]bool{}
	ix.Walk(index.Root, func(id index.ID, _ string) error {
		if e := ix.Entry(id); e.Type == index.Reg && !seen[e.Ino] {
			seen[e.Ino] = true
			n += e.Size
		}
		return nil
	})
	return n
}

// TestDirSpecialNodes covers what tar cannot carry (sockets) through an index built by hand.
func TestDirSpecialNodes(t *testing.T) {
	needRoot(t)
	b := index.NewBuilder(4)
	r := b.AddEntry(index.NoParent, "", b.AddInode(index.Inode{Type: index.Dir, Mode: 0o711, Mtime: 5, Layer: index.NoLayer}))
	sock := b.AddInode(index.Inode{Type: index.Socket, Mode: 0o4751, UID: 3, GID: 4, Mtime: 1e18 + 123456789,
		Xattrs: []index.Xattr{{Name: "trusted.s", Value: "\x00"}}, Layer: 0})
	b.AddEntry(r, "sock", sock)
	b.AddEntry(r, "sock2", sock)
	ix, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	if err := export.Dir(context.Background(), out, ix, nil, export.DirOptions{}); err != nil {
		t.Fatalf("Dir = %v", err)
	}
	checkTree(t, out, ix, nil, expect{root: true})
}

func TestDirDestination(t *testing.T) {
	ix, raw := merge(t, []F{reg("a", "1")})
	tests := []struct {
		name    string
		prepare func(t *testing.T, dst string)
		err     error
		left    []string // names in dst afterwards, when dst is a directory
	}{
		{name: "missing", prepare: func(*testing.T, string) {}},
		{name: "empty dir", prepare: func(t *testing.T, dst string) { mkdir(t, dst) }},
		{name: "non-empty dir", err: export.ErrExists, left: []string{"keep"},
			prepare: func(t *testing.T, dst string) {
				mkdir(t, dst)
				writeFile(t, filepath.Join(dst, "keep"))
			}},
		{name: "file", err: export.ErrExists, prepare: func(t *testing.T, dst string) { writeFile(t, dst) }},
		{name: "symlink to empty dir", err: export.ErrExists, prepare: func(t *testing.T, dst string) {
			mkdir(t, dst+"-target")
			if err := os.Symlink(dst+"-target", dst); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parent := t.TempDir()
			dst := filepath.Join(parent, "out")
			tt.prepare(t, dst)
			before, _ := os.ReadDir(parent)
			err := export.Dir(context.Background(), dst, ix, readers(raw), export.DirOptions{})
			if !errors.Is(err, tt.err) || (err != nil) != (tt.err != nil) {
				t.Fatalf("Dir = %v, want %v", err, tt.err)
			}
			after, _ := os.ReadDir(parent)
			if len(after) != len(before) && tt.err != nil || tt.err == nil && len(after) != max(len(before), 1) {
				t.Errorf("%s holds %d names, had %d: a temporary tree was left", parent, len(after), len(before))
			}
			if tt.err == nil {
				checkTree(t, dst, ix, raw, expect{root: os.Geteuid() == 0})
			}
			if tt.left != nil {
				noLeftovers(t, dst, tt.left...)
			}
		})
	}
}

func mkdir(t *testing.T, p string) {
	if err := os.Mkdir(p, 0o755); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, p string) {
	if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// failingLayer fails every read that reaches past limit.
type failingLayer struct {
	io.ReaderAt
	limit int64
	err   error
}

func (l failingLayer) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > l.limit {
		return 0, l.err
	}
	return l.ReaderAt.ReadAt(p, off)
}

// cancellingLayer cancels the export on its first read.
type cancellingLayer struct {
	io.ReaderAt
	cancel context.CancelFunc
}

func (l cancellingLayer) ReadAt(p []byte, off int64) (int, error) {
	l.cancel()
	return l.ReaderAt.ReadAt(p, off)
}

// offsetOf is where the content of path p starts in its layer.
func offsetOf(t *testing.T, ix *index.Index, p string) int64 {
	id, err := ix.Lookup(p)
	if err != nil {
		t.Fatal(err)
	}
	return ix.Entry(id).Offset
}

// TestDirFailure: whatever goes wrong, and however far the tree got (closed 0000 and 0555
// directories already finished), nothing is left next to dst.
func TestDirFailure(t *testing.T) {
	ix, raw := everyType(t)
	ioErr := errors.New("disk on fire")
	tests := []struct {
		name   string
		layers func(cancel context.CancelFunc) export.Layers
		want   []string // in the error text
		err    error
	}{
		{name: "read error", err: ioErr, want: []string{"usr/bin/wall", "layer 0"},
			layers: func(context.CancelFunc) export.Layers {
				return export.Layers{failingLayer{bytes.NewReader(raw[0]), offsetOf(t, ix, "usr/bin/wall"), ioErr}, bytes.NewReader(raw[1])}
			}},
		{name: "short layer", err: io.ErrUnexpectedEOF, want: []string{"usr/bin/newer", "layer 1"},
			layers: func(context.CancelFunc) export.Layers {
				return export.Layers{bytes.NewReader(raw[0]), bytes.NewReader(raw[1][:offsetOf(t, ix, "usr/bin/newer")+3])}
			}},
		{name: "missing layer", want: []string{"layer 1"},
			layers: func(context.CancelFunc) export.Layers { return export.Layers{bytes.NewReader(raw[0])} }},
		{name: "cancelled while reading", err: context.Canceled,
			layers: func(cancel context.CancelFunc) export.Layers {
				return export.Layers{cancellingLayer{bytes.NewReader(raw[0]), cancel}, bytes.NewReader(raw[1])}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			parent := t.TempDir()
			err := export.Dir(ctx, filepath.Join(parent, "out"), ix, tt.layers(cancel), export.DirOptions{Workers: 2})
			if err == nil || tt.err != nil && !errors.Is(err, tt.err) {
				t.Fatalf("Dir = %v, want %v", err, tt.err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Dir = %q, want it to name %q", err, w)
				}
			}
			noLeftovers(t, parent)
		})
	}
	t.Run("cancelled before", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		parent := t.TempDir()
		if err := export.Dir(ctx, filepath.Join(parent, "out"), ix, readers(raw), export.DirOptions{}); !errors.Is(err, context.Canceled) {
			t.Fatalf("Dir = %v, want %v", err, context.Canceled)
		}
		noLeftovers(t, parent)
	})
}

// spanLayer is a layer stored in a file at base, offering FileSpan; it counts ReadAt calls.
type spanLayer struct {
	f     *os.File
	base  int64
	reads *atomic.Int64
}

func (l spanLayer) ReadAt(p []byte, off int64) (int, error) {
	l.reads.Add(1)
	return l.f.ReadAt(p, l.base+off)
}

func (l spanLayer) FileSpan() (*os.File, int64) { return l.f, l.base }

// spanLayers stores raw in files under dir, each after a junk prefix.
func spanLayers(t testing.TB, dir string, raw [][]byte) (export.Layers, *atomic.Int64) {
	reads := new(atomic.Int64)
	var ls export.Layers
	for i, b := range raw {
		f, err := os.CreateTemp(dir, "layer-*")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close(); os.Remove(f.Name()) })
		base := int64(4096 + i*511)
		if _, err := f.WriteAt(b, base); err != nil {
			t.Fatal(err)
		}
		ls = append(ls, spanLayer{f, base, reads})
	}
	return ls, reads
}

func TestDirFileSpan(t *testing.T) {
	ix, raw := everyType(t)
	want := expect{root: os.Geteuid() == 0, skip: func(p string) bool { return os.Geteuid() != 0 && strings.HasPrefix(p, "locked/") }}
	t.Run("copy_file_range", func(t *testing.T) {
		parent := t.TempDir()
		ls, reads := spanLayers(t, parent, raw)
		out := filepath.Join(parent, "out")
		if err := export.Dir(context.Background(), out, ix, ls, export.DirOptions{}); err != nil {
			t.Fatalf("Dir = %v", err)
		}
		checkTree(t, out, ix, raw, want)
		if n := reads.Load(); n != 0 {
			t.Errorf("%d ReadAt calls, want none: copy_file_range was not used", n)
		}
	})
	t.Run("other file system", func(t *testing.T) {
		// tmpfs to ext4 or the like: copy_file_range says EXDEV, pread and write take over.
		shm, err := os.MkdirTemp("/dev/shm", "dirtest-")
		if err != nil {
			t.Skipf("no /dev/shm for a layer on another file system: %v", err)
		}
		t.Cleanup(func() { os.RemoveAll(shm) })
		parent := t.TempDir()
		var a, b unix.Statfs_t
		if unix.Statfs(shm, &a) != nil || unix.Statfs(parent, &b) != nil || a.Type == b.Type {
			t.Skip("/dev/shm and the test directory are the same kind of file system")
		}
		ls, _ := spanLayers(t, shm, raw)
		out := filepath.Join(parent, "out")
		if err := export.Dir(context.Background(), out, ix, ls, export.DirOptions{}); err != nil {
			t.Fatalf("Dir = %v", err)
		}
		checkTree(t, out, ix, raw, want)
	})
	t.Run("short file", func(t *testing.T) {
		parent := t.TempDir()
		cut := [][]byte{raw[0][:offsetOf(t, ix, "big")+1000], raw[1]}
		ls, _ := spanLayers(t, parent, cut)
		err := export.Dir(context.Background(), filepath.Join(parent, "out"), ix, ls, export.DirOptions{})
		// Every file of layer 0 from big on lies past the cut; the workers race, so any of
		// them may be the one reported.
		if !errors.Is(err, io.ErrUnexpectedEOF) || !strings.Contains(err.Error(), "layer 0") {
			t.Fatalf("Dir = %v, want an unexpected EOF naming layer 0", err)
		}
		noLeftovers(t, parent, filepath.Base(ls[0].(spanLayer).f.Name()), filepath.Base(ls[1].(spanLayer).f.Name()))
	})
}

// TestDirStaysInside: symlinks of the image point outside the target, later layers write
// "through" them (the overlay resolves those paths inside the image), and an index built by
// hand carries names that would climb out. Nothing may appear outside the target.
func TestDirStaysInside(t *testing.T) {
	base := t.TempDir()
	outside := filepath.Join(base, "outside")
	mkdir(t, outside)
	ix, raw := merge(t, []F{
		sym("evil", outside),
		sym("rel", "../../../../../../../.."+outside),
		sym("host", "/etc"),
		dir("evil2"),
		hard("evil3", "evil"),
	}, []F{
		reg("evil/x", "through an absolute symlink"),
		reg("rel/y", "through a relative symlink"),
		reg("evil2/x", "plain"),
		reg("host/dir-export-test", "never in /etc"),
	})
	if id, err := ix.Lookup("evil"); err != nil || ix.Type(id) != index.Symlink {
		t.Fatalf("evil: %v, %v; want a symlink", id, err)
	}
	for _, p := range []string{outside[1:] + "/x", outside[1:] + "/y", "evil2/x", "etc/dir-export-test"} {
		if id, err := ix.Lookup(p); err != nil || ix.Type(id) != index.Reg {
			t.Fatalf("%s is not a file of the index (%v): the overlay should resolve symlinked parents inside", p, err)
		}
	}
	out := filepath.Join(base, "out")
	if err := export.Dir(context.Background(), out, ix, readers(raw), export.DirOptions{}); err != nil {
		t.Fatalf("Dir = %v", err)
	}
	checkTree(t, out, ix, raw, expect{root: os.Geteuid() == 0})
	noLeftovers(t, outside)
	noLeftovers(t, base, "outside", "out")
	if _, err := os.Lstat("/etc/dir-export-test"); err == nil {
		t.Errorf("/etc/dir-export-test was written")
	}

	for _, name := range []string{"..", ".", "../escape", "a/b", "x\x00y"} {
		t.Run(fmt.Sprintf("name %q", name), func(t *testing.T) {
			b := index.NewBuilder(2)
			r := b.AddEntry(index.NoParent, "", b.AddInode(index.Inode{Type: index.Dir, Mode: 0o755, Layer: index.NoLayer}))
			b.AddEntry(r, name, b.AddInode(index.Inode{Type: index.Dir, Mode: 0o755, Layer: index.NoLayer}))
			ix, err := b.Finish()
			if err != nil {
				t.Skipf("the index refuses the name itself: %v", err)
			}
			parent := filepath.Join(t.TempDir(), "a", "b")
			if err := os.MkdirAll(parent, 0o755); err != nil {
				t.Fatal(err)
			}
			err = export.Dir(context.Background(), filepath.Join(parent, "out"), ix, nil, export.DirOptions{})
			if err == nil || !strings.Contains(err.Error(), "bad name") {
				t.Errorf("Dir = %v, want a bad name error", err)
			}
			noLeftovers(t, parent)
			noLeftovers(t, filepath.Dir(parent), "b")
		})
	}
}

// TestDirNotRoot exports as an ordinary user: as root it runs itself again as nobody. The
// child checks everything it can see and that a failed export cleans up behind 0000 and 0555
// directories it may not write into.
func TestDirNotRoot(t *testing.T) {
	if work := os.Getenv("DIR_TEST_NOT_ROOT"); work != "" {
		notRoot(t, work)
		return
	}
	if os.Geteuid() != 0 {
		notRoot(t, t.TempDir())
		return
	}
	out := runChild(t, "TestDirNotRoot", "DIR_TEST_NOT_ROOT",
		&syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}})
	if !strings.Contains(out, "notice: not root") {
		t.Errorf("the child gave no 'not root' notice")
	}
}

// TestDirUserNamespace exports as root of a user namespace where only that root is mapped
// (as `unshare -r` makes): CAP_CHOWN and CAP_MKNOD are there, but other owners, device nodes
// and trusted.* xattrs are refused. Each refusal is one notice, not an error.
func TestDirUserNamespace(t *testing.T) {
	if work := os.Getenv("DIR_TEST_USERNS"); work != "" {
		userNamespace(t, work)
		return
	}
	needRoot(t)
	if b, err := os.ReadFile("/proc/sys/user/max_user_namespaces"); err != nil || strings.TrimSpace(string(b)) == "0" {
		t.Skip("user namespaces are disabled")
	}
	runChild(t, "TestDirUserNamespace", "DIR_TEST_USERNS", &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER,
		Credential:  &syscall.Credential{Uid: 0, Gid: 0, NoSetGroups: true}, // root inside, nobody outside
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: nobody, Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: nobody, Size: 1}},
	})
}

const nobody = 65534

// runChild runs test again in a copy of the test binary, with attr, in a work directory
// anyone may write that it names in the environment variable env. It returns the output.
func runChild(t *testing.T, test, env string, attr *syscall.SysProcAttr) string {
	work, err := os.MkdirTemp("", "dirtest-child-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(work) })
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(work, "export.test")
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(work, 0o777); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^"+test+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), env+"="+work)
	cmd.Dir = work
	cmd.SysProcAttr = attr
	out, err := cmd.CombinedOutput()
	t.Logf("child:\n%s", out)
	if err != nil {
		t.Fatalf("child: %v", err)
	}
	return string(out)
}

// exportNoticed exports everyType into work/out, logs the notices and fails unless each of
// want was given exactly once (and no notice twice).
func exportNoticed(t *testing.T, work string, want ...string) (*index.Index, [][]byte) {
	ix, raw := everyType(t)
	var notes []string
	err := export.Dir(context.Background(), filepath.Join(work, "out"), ix, readers(raw), export.DirOptions{
		Notice: func(m string) { notes = append(notes, m); t.Logf("notice: %s", m) },
	})
	if err != nil {
		t.Fatalf("Dir = %v", err)
	}
	kinds := map[string]int{}
	for _, n := range notes {
		k, _, _ := strings.Cut(n, " (")
		k, _, _ = strings.Cut(k, ":")
		kinds[k]++
	}
	for k, n := range kinds {
		if n > 1 {
			t.Errorf("notice %q given %d times", k, n)
		}
	}
	for _, k := range want {
		if kinds[k] != 1 {
			t.Errorf("notices %q, want one %q", notes, k)
		}
	}
	return ix, raw
}

func notRoot(t *testing.T, work string) {
	if os.Geteuid() == 0 {
		t.Fatal("notRoot runs as an ordinary user")
	}
	ix, raw := exportNoticed(t, work, "not root", "cannot set trusted.* xattrs", "cannot set security.* xattrs")
	out := filepath.Join(work, "out")
	checkTree(t, out, ix, raw, expect{skip: func(p string) bool { return strings.HasPrefix(p, "locked/") }})
	// Give the tree back to ourselves so the test can remove it, as a user would.
	os.Chmod(filepath.Join(out, "locked"), 0o700)

	// A failure after "locked" (0000) and "ro" (0555) are finished leaves nothing behind.
	parent := filepath.Join(work, "failed")
	mkdir(t, parent)
	ls := export.Layers{failingLayer{bytes.NewReader(raw[0]), offsetOf(t, ix, "usr/bin/wall"), io.ErrClosedPipe}, bytes.NewReader(raw[1])}
	if err := export.Dir(context.Background(), filepath.Join(parent, "out"), ix, ls, export.DirOptions{Workers: 1}); !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("Dir = %v, want %v", err, io.ErrClosedPipe)
	}
	noLeftovers(t, parent)
}

func userNamespace(t *testing.T, work string) {
	if os.Geteuid() != 0 {
		t.Fatal("userNamespace runs as root of a user namespace")
	}
	ix, raw := exportNoticed(t, work, "cannot create device nodes here", "cannot set some owners", "cannot set trusted.* xattrs")
	checkTree(t, filepath.Join(work, "out"), ix, raw, expect{})
}

// synthetic is an image of n small files in directories of 100 and a few large files.
func synthetic(t testing.TB, n int, large int) (*index.Index, [][]byte) {
	r := rand.New(rand.NewPCG(1, 2))
	body := make([]byte, 64<<20)
	rand.NewChaCha8([32]byte{2}).Read(body)
	var files []F
	for i := range n {
		size := 512 + r.IntN(8<<10)
		files = append(files, reg(fmt.Sprintf("d%03d/f%05d", i/100, i), string(body[i:i+size])))
	}
	for i := range large {
		files = append(files, reg(fmt.Sprintf("large/%d", i), string(body[i:i+(32<<20)])))
	}
	return merge(t, files)
}

// BenchmarkDir writes ~20k small files and four of 32 MiB, from memory and by
// copy_file_range from a layer file. On an ext4 without a journal, inode allocation skips
// recently deleted inodes one by one (find_inode_bit, recently_deleted), so after trees are
// removed file creation costs ~0.5 ms and the benchmark measures that: point TMPDIR at tmpfs
// or a journaled file system to measure the export.
func BenchmarkDir(b *testing.B) {
	ix, raw := synthetic(b, 20000, 4)
	size := contentBytes(ix)
	spans, _ := spanLayers(b, b.TempDir(), raw)
	for _, bc := range []struct {
		name   string
		layers export.Layers
	}{{"memory", readers(raw)}, {"filespan", spans}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(size)
			parent := b.TempDir()
			for i := 0; b.Loop(); i++ {
				out := filepath.Join(parent, fmt.Sprint(i))
				if err := export.Dir(context.Background(), out, ix, bc.layers, export.DirOptions{}); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				os.RemoveAll(out)
				b.StartTimer()
			}
			b.ReportMetric(float64(ix.Len())*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
		})
	}
}
