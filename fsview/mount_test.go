package fsview

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ocirender/ocirender"
	"github.com/ocirender/ocirender/index"
)

// These tests mount the view for real and look at it through the kernel, from this process.

// countingLayer counts the reads that reach a layer.
type countingLayer struct {
	io.ReaderAt
	n *atomic.Int64
}

func (c countingLayer) ReadAt(p []byte, off int64) (int, error) {
	c.n.Add(1)
	return c.ReaderAt.ReadAt(p, off)
}

// mountImage mounts a view of img on a new directory and returns it, with the number of
// reads the view made from the layers so far. It skips the test where FUSE cannot work.
func mountImage(t *testing.T, img *ocirender.Image) (string, *View, *atomic.Int64) {
	t.Helper()
	requireFUSE(t)
	reads := new(atomic.Int64)
	var layers []io.ReaderAt
	for _, l := range img.Content() {
		layers = append(layers, countingLayer{l, reads})
	}
	mnt := t.TempDir()
	v := New(img.Index, layers, Options{Name: t.Name(), Logf: t.Logf})
	server, err := v.Mount(mnt)
	if err != nil {
		t.Fatalf("Mount: %v", err)
	}
	t.Cleanup(func() {
		if err := server.Unmount(); err != nil {
			t.Errorf("Unmount: %v", err)
			unix.Unmount(mnt, unix.MNT_DETACH) // leave no mount behind a failed test
		}
	})
	return mnt, v, reads
}

// requireFUSE skips the test unless it may mount.
func requireFUSE(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: mounting needs root")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skipf("skipped: no FUSE device: %v", err)
	}
}

// wantMode is the st_mode the mount shows for an inode: symlinks always 0777.
func wantMode(t index.Type, mode uint32) uint32 {
	if t == index.Symlink {
		return syscall.S_IFLNK | 0o777
	}
	return typeBits(t) | mode
}

// TestMountMatchesIndex looks at every entry through the kernel and requires it to be what
// the index says: every stat field, the link target, the xattrs, the bytes and the listing.
func TestMountMatchesIndex(t *testing.T) {
	requireFUSE(t)
	for _, xattrs := range []bool{true, false} {
		t.Run(fmt.Sprint("xattrs=", xattrs), func(t *testing.T) {
			img := testImage(t, xattrs)
			mnt, _, _ := mountImage(t, img)
			ix := img.Index
			n := 0
			err := ix.Walk(index.Root, func(id index.ID, p string) error {
				n++
				checkEntry(t, img, filepath.Join(mnt, p), id, xattrs)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if n != ix.Len() {
				t.Errorf("walked %d entries, the index has %d", n, ix.Len())
			}
		})
	}
}

func checkEntry(t *testing.T, img *ocirender.Image, p string, id index.ID, xattrs bool) {
	t.Helper()
	ix := img.Index
	e := ix.Entry(id)
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Errorf("lstat: %v", err)
		return
	}
	sec, nsec := splitNs(e.Mtime)
	var size int64
	if e.Type != index.Dir {
		size = e.Size
	}
	var rdev uint64
	if e.Type == index.Char || e.Type == index.Block {
		rdev = unix.Mkdev(e.Devmajor, e.Devminor)
	}
	for _, f := range []struct {
		name      string
		got, want any
	}{
		{"mode", fmt.Sprintf("%o", st.Mode), fmt.Sprintf("%o", wantMode(e.Type, e.Mode))},
		{"uid", st.Uid, e.UID},
		{"gid", st.Gid, e.GID},
		{"size", st.Size, size},
		{"nlink", uint64(st.Nlink), uint64(e.Nlink)},
		{"ino", st.Ino, uint64(e.Ino) + 1},
		{"rdev", st.Rdev, rdev},
		{"blocks", st.Blocks, (size + 511) / 512},
		{"blksize", st.Blksize, int64(4096)},
		{"mtime", fmt.Sprint(st.Mtim.Sec, st.Mtim.Nsec), fmt.Sprint(int64(sec), nsec)},
		{"atime", fmt.Sprint(st.Atim.Sec, st.Atim.Nsec), fmt.Sprint(int64(sec), nsec)},
		{"ctime", fmt.Sprint(st.Ctim.Sec, st.Ctim.Nsec), fmt.Sprint(int64(sec), nsec)},
	} {
		if f.got != f.want {
			t.Errorf("%q: %s = %v, want %v", p, f.name, f.got, f.want)
		}
	}
	switch e.Type {
	case index.Symlink:
		if got, err := os.Readlink(p); err != nil || got != e.Link {
			t.Errorf("readlink %q = %q, %v; want %q", p, got, err, e.Link)
		}
	case index.Reg:
		got, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(got, content(t, img, ix.Path(id))) {
			t.Errorf("%q: content differs from the layer's (%d bytes read, %v)", p, len(got), err)
		}
	case index.Dir:
		d, err := os.Open(p)
		if err != nil {
			t.Error(err)
			return
		}
		names, err := d.Readdirnames(-1) // in the order the kernel gives them
		d.Close()
		var want []string
		for _, k := range ix.Children(id) {
			want = append(want, ix.Name(k))
		}
		if err != nil || strings.Join(names, "/") != strings.Join(want, "/") {
			t.Errorf("readdir %q = %q, %v; want %q", p, names, err, want)
		}
	}
	var want []string
	for _, x := range e.Xattrs {
		want = append(want, x.Name+"="+x.Value)
	}
	got, err := xattrsOf(p)
	switch {
	case !xattrs && !errors.Is(err, unix.ENOTSUP):
		t.Errorf("llistxattr %q = %v, want ENOTSUP: the image has no xattrs", p, err)
	case xattrs && (err != nil || strings.Join(got, "\n") != strings.Join(want, "\n")):
		t.Errorf("xattrs of %q = %q, %v; want %q", p, got, err, want)
	}
}

// xattrsOf lists the extended attributes of p as name=value, in the order listxattr gives.
func xattrsOf(p string) ([]string, error) {
	buf := make([]byte, 64<<10)
	n, err := unix.Llistxattr(p, buf)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, name := range strings.Split(string(buf[:n]), "\x00") {
		if name == "" {
			continue
		}
		k, err := unix.Lgetxattr(p, name, buf)
		if err != nil {
			return nil, fmt.Errorf("lgetxattr %s: %w", name, err)
		}
		out = append(out, name+"="+string(buf[:k]))
	}
	return out, nil
}

func TestMountXattrBuffers(t *testing.T) {
	requireFUSE(t)
	mnt, _, _ := mountImage(t, testImage(t, true))
	p := filepath.Join(mnt, "x/file")
	if n, err := unix.Lgetxattr(p, "user.long", nil); n != len(longXval) || err != nil {
		t.Errorf("lgetxattr(user.long, size 0) = %d, %v; want %d, nil", n, err, len(longXval))
	}
	if _, err := unix.Lgetxattr(p, "user.long", make([]byte, 100)); !errors.Is(err, unix.ERANGE) {
		t.Errorf("lgetxattr(user.long, 100 bytes) = %v, want ERANGE", err)
	}
	if _, err := unix.Lgetxattr(p, "user.nope", make([]byte, 100)); !errors.Is(err, unix.ENODATA) {
		t.Errorf("lgetxattr(user.nope) = %v, want ENODATA", err)
	}
	list := "trusted.t\x00user.bin\x00user.long\x00"
	if n, err := unix.Llistxattr(p, nil); n != len(list) || err != nil {
		t.Errorf("llistxattr(size 0) = %d, %v; want %d, nil", n, err, len(list))
	}
	if _, err := unix.Llistxattr(p, make([]byte, 5)); !errors.Is(err, unix.ERANGE) {
		t.Errorf("llistxattr(5 bytes) = %v, want ERANGE", err)
	}
	buf := make([]byte, 64)
	if n, err := unix.Lgetxattr(filepath.Join(mnt, "usr/bin/ping"), "security.capability", buf); err != nil || string(buf[:n]) != capValue {
		t.Errorf("security.capability = %q, %v; want %q", buf[:n], err, capValue)
	}
}

// TestMountHardLinks: the names of one inode are one inode for the kernel and one node for
// go-fuse.
func TestMountHardLinks(t *testing.T) {
	requireFUSE(t)
	mnt, v, _ := mountImage(t, testImage(t, false))
	var inos []uint64
	for _, p := range []string{"hl/a", "hl/b", "hl2/c"} {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(mnt, p), &st); err != nil {
			t.Fatal(err)
		}
		if st.Nlink != 3 {
			t.Errorf("%s: nlink %d, want 3", p, st.Nlink)
		}
		inos = append(inos, st.Ino)
	}
	if inos[0] != inos[1] || inos[0] != inos[2] {
		t.Errorf("hard links have inode numbers %v, want one", inos)
	}
	root := v.Root().EmbeddedInode()
	a, b, c := root.GetChild("hl").GetChild("a"), root.GetChild("hl").GetChild("b"), root.GetChild("hl2").GetChild("c")
	if a == nil || a != b || a != c {
		t.Errorf("go-fuse nodes of hl/a, hl/b, hl2/c = %p, %p, %p; want one", a, b, c)
	}
}

func TestMountReadOnly(t *testing.T) {
	requireFUSE(t)
	mnt, _, _ := mountImage(t, testImage(t, true))
	in := func(p string) string { return filepath.Join(mnt, p) }
	open := func(p string, flags int) error {
		f, err := os.OpenFile(in(p), flags, 0o644)
		if err == nil {
			f.Close()
		}
		return err
	}
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"open O_WRONLY", open("etc/hostname", os.O_WRONLY)},
		{"open O_RDWR", open("etc/hostname", os.O_RDWR)},
		{"open O_TRUNC", open("etc/hostname", os.O_RDONLY|os.O_TRUNC)},
		{"open O_APPEND", open("etc/hostname", os.O_WRONLY|os.O_APPEND)},
		{"create", open("etc/new", os.O_WRONLY|os.O_CREATE)},
		{"mkdir", os.Mkdir(in("newdir"), 0o755)},
		{"remove file", os.Remove(in("etc/hostname"))},
		{"remove dir", os.Remove(in("tmp"))},
		{"rename", os.Rename(in("etc/hostname"), in("etc/hostname2"))},
		{"link", os.Link(in("etc/hostname"), in("etc/hostname2"))},
		{"symlink", os.Symlink("x", in("etc/sym"))},
		{"chmod", os.Chmod(in("etc/hostname"), 0o600)},
		{"chown", os.Lchown(in("etc/hostname"), 1, 1)},
		{"utimes", os.Chtimes(in("etc/hostname"), time.Now(), time.Now())},
		{"truncate", os.Truncate(in("etc/hostname"), 0)},
		{"setxattr", unix.Lsetxattr(in("x/file"), "user.new", []byte("v"), 0)},
		{"removexattr", unix.Lremovexattr(in("x/file"), "user.bin")},
		{"mknod", unix.Mknod(in("dev/new"), unix.S_IFIFO|0o644, 0)},
		{"access W_OK", unix.Access(in("etc/hostname"), unix.W_OK)},
	} {
		if !errors.Is(tc.err, syscall.EROFS) {
			t.Errorf("%s: %v, want EROFS", tc.name, tc.err)
		}
	}
}

// TestMountReaddir reads a large directory in small getdents calls, so that the listing is
// resumed at offsets, and requires ".", "..", then every child in the index's order.
func TestMountReaddir(t *testing.T) {
	requireFUSE(t)
	img := testImage(t, false)
	mnt, _, _ := mountImage(t, img)
	fd, err := unix.Open(filepath.Join(mnt, "many"), unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	var names []string
	buf := make([]byte, 256)
	for {
		n, err := unix.Getdents(fd, buf)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		for b := buf[:n]; len(b) > 0; {
			reclen := binary.NativeEndian.Uint16(b[16:18])
			name := b[19:reclen]
			names = append(names, string(name[:bytes.IndexByte(name, 0)]))
			b = b[reclen:]
		}
	}
	want := []string{".", ".."}
	id := lookup(t, img.Index, "many")
	for _, k := range img.Index.Children(id) {
		want = append(want, img.Index.Name(k))
	}
	if strings.Join(names, "/") != strings.Join(want, "/") {
		t.Errorf("getdents of /many in 256-byte pieces = %d names %q..., want %d", len(names), names[:min(len(names), 5)], len(want))
	}
}

// TestMountRead reads the large files at many offsets and lengths, and checks that the page
// cache outlives a close: reading a file again reads nothing from the layers.
func TestMountRead(t *testing.T) {
	requireFUSE(t)
	img := testImage(t, false)
	mnt, _, reads := mountImage(t, img)
	rng := rand.New(rand.NewPCG(3, 4))
	for _, p := range []string{"big/gzip", "big/zstd", "etc/shadow"} {
		want := content(t, img, p)
		f, err := os.Open(filepath.Join(mnt, p))
		if err != nil {
			t.Fatal(err)
		}
		for range 300 {
			off := rng.Int64N(int64(len(want)) + 10)
			buf := make([]byte, 1+rng.IntN(200000))
			n, err := f.ReadAt(buf, off)
			from := min(int(off), len(want))
			to := min(from+len(buf), len(want))
			if n != to-from || (err != nil && err != io.EOF) || !bytes.Equal(buf[:n], want[from:to]) {
				f.Close()
				t.Fatalf("%s: pread(%d bytes at %d) = %d, %v; want %d bytes of the file", p, len(buf), off, n, err, to-from)
			}
		}
		f.Close()
		if got, err := os.ReadFile(filepath.Join(mnt, p)); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: read whole: %d bytes, %v", p, len(got), err)
		}
		before := reads.Load()
		if got, err := os.ReadFile(filepath.Join(mnt, p)); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: read again: %d bytes, %v", p, len(got), err)
		}
		if n := reads.Load() - before; n != 0 {
			t.Errorf("%s: reading a file again made %d layer reads, want 0 (FOPEN_KEEP_CACHE)", p, n)
		}
	}
}

// TestMountConcurrentReaders: 8 readers at random files and offsets at once, each read
// checked against the file's content. Run it with -race.
func TestMountConcurrentReaders(t *testing.T) {
	requireFUSE(t)
	img := testImage(t, false)
	mnt, _, _ := mountImage(t, img)
	var files []string
	contents := map[string][]byte{}
	img.Index.Walk(index.Root, func(id index.ID, p string) error {
		if img.Index.Type(id) == index.Reg {
			files = append(files, p)
			contents[p] = content(t, img, p)
		}
		return nil
	})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for r := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(r), 99))
			for range 150 {
				p := files[rng.IntN(len(files))]
				if rng.IntN(3) > 0 { // favour the large files, where the offsets matter
					p = []string{"big/gzip", "big/zstd"}[rng.IntN(2)]
				}
				want := contents[p]
				off := rng.Int64N(int64(len(want)) + 1)
				buf := make([]byte, 1+rng.IntN(64<<10))
				f, err := os.Open(filepath.Join(mnt, p))
				if err != nil {
					errs <- err
					return
				}
				n, err := f.ReadAt(buf, off)
				f.Close()
				end := min(int(off)+len(buf), len(want))
				if (err != nil && err != io.EOF) || !bytes.Equal(buf[:n], want[off:end]) {
					errs <- fmt.Errorf("reader %d: %s: pread(%d bytes at %d) = %d bytes, %v; want %d bytes of the file", r, p, len(buf), off, n, err, end-int(off))
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestMountStatfs(t *testing.T) {
	requireFUSE(t)
	img := testImage(t, false)
	mnt, _, _ := mountImage(t, img)
	var st unix.Statfs_t
	if err := unix.Statfs(mnt, &st); err != nil {
		t.Fatal(err)
	}
	if want := (uint64(img.Index.ContentSize()) + 4095) / 4096; st.Blocks != want || st.Bfree != 0 || st.Files != uint64(img.Index.Inodes()) {
		t.Errorf("statfs = %d blocks (%d free), %d files; want %d, 0, %d", st.Blocks, st.Bfree, st.Files, want, img.Index.Inodes())
	}
	if st.Flags&unix.ST_RDONLY == 0 {
		t.Errorf("statfs flags %#x lack ST_RDONLY", st.Flags)
	}
	// The mount table shows what the view asked for.
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	found := false
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 10 || fields[4] != mnt {
			continue
		}
		found = true
		line := sc.Text()
		for _, want := range []string{" - fuse.ocimount ocimount:TestMountStatfs ", "default_permissions"} {
			if !strings.Contains(line, want) {
				t.Errorf("mountinfo line %q lacks %q", line, want)
			}
		}
		if !strings.HasPrefix(fields[5], "ro,") {
			t.Errorf("mount options %q: not read-only", fields[5])
		}
	}
	if !found {
		t.Errorf("%s is not in /proc/self/mountinfo", mnt)
	}
}
