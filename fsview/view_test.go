package fsview

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"syscall"
	"testing"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/ocirender/ocirender/index"
)

// These tests call the nodes' methods directly, as go-fuse would, without a kernel: they run
// anywhere. mount_test.go checks the same things through a real mount.

func TestSplitNs(t *testing.T) {
	for _, tc := range []struct {
		ns   int64
		sec  int64
		nsec uint32
	}{
		{0, 0, 0},
		{1600000000123456789, 1600000000, 123456789},
		{-1, -1, 999999999},
		{-1e9, -1, 0},
		{-1e9 - 1, -2, 999999999},
	} {
		sec, nsec := splitNs(tc.ns)
		if int64(sec) != tc.sec || nsec != tc.nsec {
			t.Errorf("splitNs(%d) = %d, %d, want %d, %d", tc.ns, int64(sec), nsec, tc.sec, tc.nsec)
		}
	}
}

func TestMkdev(t *testing.T) {
	for _, d := range [][2]uint32{{0, 0}, {1, 3}, {8, 1}, {259, 7}, {511, 300000}, {4095, 1<<20 - 1}} {
		if got, want := unixMkdev(d[0], d[1]), uint32(unix.Mkdev(d[0], d[1])); got != want {
			t.Errorf("unixMkdev(%d, %d) = %#x, want %#x", d[0], d[1], got, want)
		}
	}
}

func TestAttr(t *testing.T) {
	img := testImage(t, true)
	v := New(img.Index, img.Content(), Options{})
	ix := img.Index
	for _, tc := range []struct {
		path             string
		mode             uint32
		uid, gid         uint32
		size             uint64
		mtimeSec         int64
		mtimeNs          uint32
		rdev             uint32
		nlink            uint32
		blocks           uint64
		ignoreMtimeCheck bool
	}{
		{path: "etc/hostname", mode: syscall.S_IFREG | 0o644, size: 4, mtimeSec: nsTime.Unix(), mtimeNs: 123456789, nlink: 1, blocks: 1},
		{path: "etc/shadow", mode: syscall.S_IFREG, size: 7, mtimeSec: nsTime.Unix(), mtimeNs: 123456789, nlink: 1, blocks: 1},
		{path: "etc/old", mode: syscall.S_IFREG | 0o644, size: 4, mtimeSec: oldTime.Unix(), mtimeNs: 250, nlink: 1, blocks: 1},
		{path: "usr/bin/ping", mode: syscall.S_IFREG | 0o4755, size: 4, nlink: 1, blocks: 1, ignoreMtimeCheck: true},
		{path: "usr/bin/owned", mode: syscall.S_IFREG | 0o2755, uid: 1000000, gid: 65534, size: 1, nlink: 1, blocks: 1, ignoreMtimeCheck: true},
		{path: "tmp", mode: syscall.S_IFDIR | 0o1777, nlink: 2, ignoreMtimeCheck: true},
		{path: "big/gzip", mode: syscall.S_IFREG | 0o644, size: uint64(len(bigGzip)), nlink: 1, blocks: uint64(len(bigGzip)+511) / 512, ignoreMtimeCheck: true},
		{path: "empty", mode: syscall.S_IFREG | 0o644, nlink: 1, ignoreMtimeCheck: true},
		{path: "link", mode: syscall.S_IFLNK | 0o777 /* whatever the tar header said */, size: uint64(len("etc/hostname")), nlink: 1, blocks: 1, ignoreMtimeCheck: true},
		{path: "hl/b", mode: syscall.S_IFREG | 0o644, size: 7, nlink: 3, blocks: 1, ignoreMtimeCheck: true},
		{path: "dev/null", mode: syscall.S_IFCHR | 0o666, rdev: uint32(unix.Mkdev(1, 3)), nlink: 1, ignoreMtimeCheck: true},
		{path: "dev/sda1", mode: syscall.S_IFBLK | 0o660, rdev: uint32(unix.Mkdev(8, 1)), nlink: 1, ignoreMtimeCheck: true},
		{path: "dev/wide", mode: syscall.S_IFCHR | 0o600, rdev: uint32(unix.Mkdev(511, 300000)), nlink: 1, ignoreMtimeCheck: true},
		{path: "fifo", mode: syscall.S_IFIFO | 0o644, nlink: 1, ignoreMtimeCheck: true},
		{path: "", mode: syscall.S_IFDIR | 0o755, nlink: uint32(2 + countDirs(ix, index.Root)), ignoreMtimeCheck: true},
	} {
		t.Run(tc.path, func(t *testing.T) {
			id := lookup(t, ix, tc.path)
			var a fuse.Attr
			v.fillAttr(id, &a)
			check := func(field string, got, want any) {
				if got != want {
					t.Errorf("fillAttr(%q).%s = %v, want %v", tc.path, field, got, want)
				}
			}
			check("Mode", fmt.Sprintf("%o", a.Mode), fmt.Sprintf("%o", tc.mode))
			check("Uid", a.Uid, tc.uid)
			check("Gid", a.Gid, tc.gid)
			check("Size", a.Size, tc.size)
			check("Nlink", a.Nlink, tc.nlink)
			check("Rdev", a.Rdev, tc.rdev)
			check("Blocks", a.Blocks, tc.blocks)
			check("Blksize", a.Blksize, uint32(blockSize))
			check("Ino", a.Ino, uint64(ix.Ino(id))+1)
			if !tc.ignoreMtimeCheck {
				check("Mtime", int64(a.Mtime), tc.mtimeSec)
				check("Mtimensec", a.Mtimensec, tc.mtimeNs)
			}
			check("Atime", a.Atime, a.Mtime)
			check("Atimensec", a.Atimensec, a.Mtimensec)
			check("Ctime", a.Ctime, a.Mtime)
			check("Ctimensec", a.Ctimensec, a.Mtimensec)
		})
	}
}

func countDirs(ix *index.Index, id index.ID) int {
	n := 0
	for _, k := range ix.Children(id) {
		if ix.Type(k) == index.Dir {
			n++
		}
	}
	return n
}

func TestXattrBuffers(t *testing.T) {
	img := testImage(t, true)
	v := New(img.Index, img.Content(), Options{})
	n := v.newNode(lookup(t, img.Index, "x/file")).(*file)
	ctx := context.Background()
	for _, tc := range []struct {
		name, value string
	}{{"user.bin", "\x00\xff\x00"}, {"user.long", longXval}, {"trusted.t", "T"}} {
		size, errno := n.Getxattr(ctx, tc.name, nil)
		if size != uint32(len(tc.value)) || (errno != 0 && errno != syscall.ERANGE) {
			t.Errorf("Getxattr(%q, nil) = %d, %v, want %d, ERANGE", tc.name, size, errno, len(tc.value))
		}
		if len(tc.value) > 1 {
			if size, errno := n.Getxattr(ctx, tc.name, make([]byte, len(tc.value)-1)); errno != syscall.ERANGE || size != uint32(len(tc.value)) {
				t.Errorf("Getxattr(%q, short buffer) = %d, %v, want %d, ERANGE", tc.name, size, errno, len(tc.value))
			}
		}
		buf := make([]byte, len(tc.value)+10)
		size, errno = n.Getxattr(ctx, tc.name, buf)
		if errno != 0 || string(buf[:size]) != tc.value {
			t.Errorf("Getxattr(%q) = %q, %v, want %q", tc.name, buf[:size], errno, tc.value)
		}
	}
	if _, errno := n.Getxattr(ctx, "user.missing", make([]byte, 100)); errno != syscall.ENODATA {
		t.Errorf("Getxattr(user.missing) = %v, want ENODATA", errno)
	}
	want := "trusted.t\x00user.bin\x00user.long\x00"
	if size, _ := n.Listxattr(ctx, nil); size != uint32(len(want)) {
		t.Errorf("Listxattr(nil) = %d, want %d", size, len(want))
	}
	if size, errno := n.Listxattr(ctx, make([]byte, len(want)-1)); errno != syscall.ERANGE || size != uint32(len(want)) {
		t.Errorf("Listxattr(short buffer) = %d, %v, want %d, ERANGE", size, errno, len(want))
	}
	buf := make([]byte, 200)
	size, errno := n.Listxattr(ctx, buf)
	if errno != 0 || string(buf[:size]) != want {
		t.Errorf("Listxattr = %q, %v, want %q", buf[:size], errno, want)
	}
	plain := v.newNode(lookup(t, img.Index, "etc/hostname")).(*file)
	if size, errno := plain.Listxattr(ctx, buf); size != 0 || errno != 0 {
		t.Errorf("Listxattr(no xattrs) = %d, %v, want 0, OK", size, errno)
	}
}

func TestDirStream(t *testing.T) {
	img := testImage(t, false)
	ix := img.Index
	v := New(ix, img.Content(), Options{})
	id := lookup(t, ix, "names")
	d := v.newNode(id).(*dir)
	want := []string{".", "..", "B", "Z", "_", "a", "a b", "new\nline", "\xff\xfe"}
	list := func(s *dirStream) []string {
		var names []string
		for s.HasNext() {
			e, errno := s.Next()
			if errno != 0 {
				t.Fatal(errno)
			}
			names = append(names, e.Name)
			if e.Off != uint64(s.pos) {
				t.Errorf("entry %q: Off %d, want %d", e.Name, e.Off, s.pos)
			}
		}
		return names
	}
	s := &dirStream{d: d}
	if got := list(s); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("listing of /names = %q, want %q", got, want)
	}
	if errno := s.Seekdir(context.Background(), 4); errno != 0 {
		t.Fatal(errno)
	}
	if got := list(s); strings.Join(got, "|") != strings.Join(want[4:], "|") {
		t.Errorf("listing of /names from offset 4 = %q, want %q", got, want[4:])
	}
	if errno := s.Seekdir(context.Background(), 100); errno != syscall.EINVAL {
		t.Errorf("Seekdir past the end = %v, want EINVAL", errno)
	}
	s = &dirStream{d: d}
	e, _ := s.Next()
	if e.Ino != v.stableIno(id) {
		t.Errorf(". has ino %d, want %d", e.Ino, v.stableIno(id))
	}
	e, _ = s.Next()
	if e.Ino != v.stableIno(index.Root) {
		t.Errorf(".. has ino %d, want %d", e.Ino, v.stableIno(index.Root))
	}
}

func readAll(t *testing.T, f *file, size int64, chunk int) []byte {
	t.Helper()
	var out []byte
	for off := int64(0); ; {
		rr, errno := f.Read(context.Background(), nil, make([]byte, chunk), off)
		if errno != 0 {
			t.Fatalf("Read at %d: %v", off, errno)
		}
		b, _ := rr.Bytes(nil)
		if len(b) == 0 {
			break
		}
		out = append(out, b...)
		off += int64(len(b))
	}
	if int64(len(out)) != size {
		t.Fatalf("read %d bytes, want %d", len(out), size)
	}
	return out
}

func TestRead(t *testing.T) {
	img := testImage(t, false)
	v := New(img.Index, img.Content(), Options{})
	for _, p := range []string{"big/gzip", "big/zstd", "etc/hostname", "etc/shadow", "empty"} {
		f := v.newNode(lookup(t, img.Index, p)).(*file)
		want := content(t, img, p)
		for _, chunk := range []int{4096, 131072, 1000} {
			if got := readAll(t, f, int64(len(want)), chunk); !bytes.Equal(got, want) {
				t.Errorf("%s read in %d-byte pieces differs from its content", p, chunk)
			}
		}
	}
	if got := string(readAll(t, v.newNode(lookup(t, img.Index, "big/gzip")).(*file), int64(len(bigGzip)), 65536)); got != bigGzip {
		t.Errorf("big/gzip does not hold what the layer was built with")
	}
}

// failingLayer is a layer whose bytes cannot be read.
type failingLayer struct{}

func (failingLayer) ReadAt(p []byte, off int64) (int, error) {
	return 0, errors.New("corrupt deflate stream")
}

func TestReadError(t *testing.T) {
	img := testImage(t, false)
	var logged []string
	layers := []io.ReaderAt{failingLayer{}, failingLayer{}}
	v := New(img.Index, layers, Options{Logf: func(format string, args ...any) { logged = append(logged, fmt.Sprintf(format, args...)) }})
	f := v.newNode(lookup(t, img.Index, "big/gzip")).(*file)
	if _, errno := f.Read(context.Background(), nil, make([]byte, 4096), 0); errno != syscall.EIO {
		t.Errorf("Read from a failing layer = %v, want EIO", errno)
	}
	if len(logged) != 1 || !strings.Contains(logged[0], "big/gzip") || !strings.Contains(logged[0], "corrupt deflate stream") {
		t.Errorf("logged %q, want one line naming the file and the cause", logged)
	}
}

func TestWritesFail(t *testing.T) {
	img := testImage(t, true)
	v := New(img.Index, img.Content(), Options{})
	ctx := context.Background()
	d := v.newNode(index.Root).(*dir)
	f := v.newNode(lookup(t, img.Index, "etc/hostname")).(*file)
	var out fuse.EntryOut
	for _, tc := range []struct {
		name  string
		errno syscall.Errno
	}{
		{"open O_WRONLY", func() syscall.Errno { _, _, e := f.Open(ctx, syscall.O_WRONLY); return e }()},
		{"open O_RDWR", func() syscall.Errno { _, _, e := f.Open(ctx, syscall.O_RDWR); return e }()},
		{"open O_TRUNC", func() syscall.Errno { _, _, e := f.Open(ctx, syscall.O_RDONLY|syscall.O_TRUNC); return e }()},
		{"write", func() syscall.Errno { _, e := f.Write(ctx, nil, []byte("x"), 0); return e }()},
		{"allocate", f.Allocate(ctx, nil, 0, 10, 0)},
		{"copy_file_range", func() syscall.Errno { _, e := f.CopyFileRange(ctx, nil, 0, nil, nil, 0, 1, 0); return e }()},
		{"setattr", f.Setattr(ctx, nil, &fuse.SetAttrIn{}, &fuse.AttrOut{})},
		{"setxattr", f.Setxattr(ctx, "user.x", []byte("y"), 0)},
		{"removexattr", f.Removexattr(ctx, "user.x")},
		{"create", func() syscall.Errno { _, _, _, e := d.Create(ctx, "new", 0, 0o644, &out); return e }()},
		{"tmpfile", func() syscall.Errno { _, _, _, e := d.Tmpfile(ctx, 0, 0o644, &out); return e }()},
		{"mkdir", func() syscall.Errno { _, e := d.Mkdir(ctx, "new", 0o755, &out); return e }()},
		{"mknod", func() syscall.Errno { _, e := d.Mknod(ctx, "new", 0o644, 0, &out); return e }()},
		{"link", func() syscall.Errno { _, e := d.Link(ctx, f, "new", &out); return e }()},
		{"symlink", func() syscall.Errno { _, e := d.Symlink(ctx, "t", "new", &out); return e }()},
		{"unlink", d.Unlink(ctx, "etc")},
		{"rmdir", d.Rmdir(ctx, "tmp")},
		{"rename", d.Rename(ctx, "etc", d, "etc2", 0)},
	} {
		if tc.errno != syscall.EROFS {
			t.Errorf("%s = %v, want EROFS", tc.name, tc.errno)
		}
	}
	if _, flags, errno := f.Open(ctx, syscall.O_RDONLY); errno != 0 || flags&fuse.FOPEN_KEEP_CACHE == 0 {
		t.Errorf("open O_RDONLY = flags %#x, %v; want FOPEN_KEEP_CACHE, OK", flags, errno)
	}
}

func TestStatfs(t *testing.T) {
	img := testImage(t, false)
	v := New(img.Index, img.Content(), Options{})
	var out fuse.StatfsOut
	if errno := v.root.Statfs(context.Background(), &out); errno != 0 {
		t.Fatal(errno)
	}
	if want := (uint64(img.Index.ContentSize()) + 4095) / 4096; out.Blocks != want || out.Bfree != 0 || out.Bavail != 0 {
		t.Errorf("statfs blocks = %d (free %d, avail %d), want %d, 0, 0", out.Blocks, out.Bfree, out.Bavail, want)
	}
	if out.Files != uint64(img.Index.Inodes()) || out.Bsize != 4096 || out.NameLen != 255 {
		t.Errorf("statfs files = %d, bsize %d, namelen %d; want %d, 4096, 255", out.Files, out.Bsize, out.NameLen, img.Index.Inodes())
	}
}

func TestFSOptions(t *testing.T) {
	with := New(testImage(t, true).Index, nil, Options{Name: "img.tar", AllowOther: true})
	without := New(testImage(t, false).Index, nil, Options{})
	o := with.FSOptions()
	if o.FsName != "ocimount:img.tar" || o.Name != "ocimount" || !o.AllowOther || o.DisableXAttrs {
		t.Errorf("FSOptions = fsname %q, subtype %q, allow_other %v, no xattrs %v; want ocimount:img.tar, ocimount, true, false",
			o.FsName, o.Name, o.AllowOther, o.DisableXAttrs)
	}
	for _, opt := range []string{"ro", "default_permissions"} {
		if !strings.Contains(","+strings.Join(o.Options, ",")+",", ","+opt+",") {
			t.Errorf("mount options %q lack %s", o.Options, opt)
		}
	}
	if *o.EntryTimeout < 3600e9 || *o.AttrTimeout < 3600e9 || *o.NegativeTimeout < 3600e9 {
		t.Errorf("timeouts %v %v %v, want an hour or more", *o.EntryTimeout, *o.AttrTimeout, *o.NegativeTimeout)
	}
	if !o.NullPermissions {
		t.Error("NullPermissions is off: go-fuse would show mode 0000 files as 0644")
	}
	if !without.FSOptions().DisableXAttrs {
		t.Error("an image without xattrs mounts with xattrs enabled")
	}
	var _ fs.InodeEmbedder = with.Root()
}
