package verify

import (
	"crypto/sha256"
	"encoding/hex"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

const fixedNs = 1_600_000_000_123_456_789

// mkfile writes content to dir/rel, creating parents.
// mode holds raw permission bits (07777), not os.FileMode flags.
func mkfile(t *testing.T, dir, rel, content string, mode uint32) {
	t.Helper()
	p := filepath.Join(dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := unix.Chmod(p, uint32(mode)); err != nil { // raw bits, umask-proof
		t.Fatal(err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// setTimes sets the mtime (and atime) of every path under dir, the root
// included, to ns without following symlinks.
func setTimes(t *testing.T, dir string, ns int64) {
	t.Helper()
	ts := []unix.Timespec{unix.NsecToTimespec(ns), unix.NsecToTimespec(ns)}
	err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW)
	})
	must(t, err)
}

func touch(t *testing.T, p string, ns int64) {
	t.Helper()
	ts := []unix.Timespec{unix.NsecToTimespec(ns), unix.NsecToTimespec(ns)}
	must(t, unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW))
}

func byPath(entries []Entry) map[string]Entry {
	m := make(map[string]Entry, len(entries))
	for _, e := range entries {
		m[e.Path] = e
	}
	return m
}

func TestScanDir(t *testing.T) {
	dir := t.TempDir()
	outside := t.TempDir()
	mkfile(t, outside, "secret", "not part of the tree", 0o644)

	mkfile(t, dir, "a/file", "hello\n", 0o640)
	mkfile(t, dir, "a/exec", "#!/bin/sh\n", 0o4755)
	mkfile(t, dir, "empty", "", 0o600)
	mkfile(t, dir, "odd/new\nline", "x", 0o644)
	mkfile(t, dir, "odd/\xff\xfe", "y", 0o644)
	mkfile(t, dir, "odd/with space", "z", 0o644)
	must(t, unix.Chmod(filepath.Join(dir, "odd"), 0o1777))
	must(t, os.Symlink("file", filepath.Join(dir, "a/rel")))
	must(t, os.Symlink(outside, filepath.Join(dir, "out")))
	must(t, os.Link(filepath.Join(dir, "a/file"), filepath.Join(dir, "hard")))
	must(t, unix.Mkfifo(filepath.Join(dir, "fifo"), 0o600))
	must(t, unix.Setxattr(filepath.Join(dir, "a/file"), "user.bin", []byte("\x00\x01\xff"), 0))
	must(t, unix.Setxattr(filepath.Join(dir, "a"), "user.empty", nil, 0))
	l, err := net.Listen("unix", filepath.Join(dir, "sock"))
	must(t, err)
	defer l.Close()
	setTimes(t, dir, fixedNs)

	entries, err := ScanDir(dir)
	if err != nil {
		t.Fatalf("ScanDir: %v", err)
	}
	var paths []string
	for _, e := range entries {
		paths = append(paths, e.Path)
	}
	wantPaths := []string{"", "a", "a/exec", "a/file", "a/rel", "empty", "fifo", "hard",
		"odd", "odd/new\nline", "odd/with space", "odd/\xff\xfe", "out", "sock"}
	if !reflect.DeepEqual(paths, wantPaths) {
		t.Fatalf("ScanDir paths = %q, want %q", paths, wantPaths)
	}

	uid, gid := uint32(os.Getuid()), uint32(os.Getgid())
	const helloSum = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
	m := byPath(entries)
	for _, want := range []Entry{
		{Path: "a/file", Type: Reg, Mode: 0o640, Size: 6, Digest: helloSum, Inode: "a/file",
			Xattrs: map[string]string{"user.bin": "\x00\x01\xff"}},
		{Path: "hard", Type: Reg, Mode: 0o640, Size: 6, Digest: helloSum, Inode: "a/file",
			Xattrs: map[string]string{"user.bin": "\x00\x01\xff"}},
		{Path: "a/exec", Type: Reg, Mode: 0o4755, Size: 10,
			Digest: "a8076d3d28d21e02012b20eaf7dbf75409a6277134439025f282e368e3305abf"},
		{Path: "empty", Type: Reg, Mode: 0o600,
			Digest: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
		{Path: "a/rel", Type: Symlink, Mode: 0o777, Link: "file"},
		{Path: "out", Type: Symlink, Mode: 0o777, Link: outside},
		{Path: "fifo", Type: Fifo, Mode: 0o600},
		{Path: "odd", Type: Dir, Mode: 0o1777},
		{Path: "a", Type: Dir, Mode: 0o755, Xattrs: map[string]string{"user.empty": ""}},
	} {
		got := m[want.Path]
		want.UID, want.GID, want.MtimeNs = uid, gid, fixedNs
		if !reflect.DeepEqual(got, want) {
			t.Errorf("ScanDir entry %q = %+v, want %+v", want.Path, got, want)
		}
	}
	if got := m["sock"].Type; got != Socket {
		t.Errorf("ScanDir sock type = %v, want socket", got)
	}
	if got := m[""]; got.Type != Dir || got.MtimeNs != fixedNs {
		t.Errorf("ScanDir root = %+v, want a dir with mtime %d", got, int64(fixedNs))
	}
}

func TestScanDirDevices(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mknod of devices needs root")
	}
	dir := t.TempDir()
	must(t, unix.Mknod(filepath.Join(dir, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	must(t, unix.Chmod(filepath.Join(dir, "null"), 0o666))
	must(t, unix.Mknod(filepath.Join(dir, "big"), unix.S_IFBLK|0o600, int(unix.Mkdev(511, 70000))))
	entries, err := ScanDir(dir)
	must(t, err)
	m := byPath(entries)
	if e := m["null"]; e.Type != Char || e.Devmajor != 1 || e.Devminor != 3 || e.Mode != 0o666 {
		t.Errorf("ScanDir null = %+v, want char 1,3 0666", e)
	}
	if e := m["big"]; e.Type != Block || e.Devmajor != 511 || e.Devminor != 70000 {
		t.Errorf("ScanDir big = %+v, want block 511,70000", e)
	}
}

func TestScanDirRefusesNonDir(t *testing.T) {
	dir := t.TempDir()
	mkfile(t, dir, "f", "x", 0o644)
	must(t, os.Symlink(".", filepath.Join(dir, "self")))
	for _, p := range []string{"f", "self", "missing"} {
		if _, err := ScanDir(filepath.Join(dir, p)); err == nil {
			t.Errorf("ScanDir(%s) = nil error, want an error", p)
		}
	}
}

// TestScanDirDeeperThanPathMax scans a tree whose deepest path is longer than PATH_MAX, as
// an image may hold (each name within NAME_MAX, each call of the walk on one name): the
// file, its xattr and a symlink at the bottom must be found.
func TestScanDirDeeperThanPathMax(t *testing.T) {
	root := t.TempDir()
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	must(t, err)
	component := strings.Repeat("d", 200)
	var rel []string
	for range 25 { // 5025 bytes of directories
		must(t, unix.Mkdirat(fd, component, 0o755))
		next, err := unix.Openat(fd, component, unix.O_RDONLY|unix.O_DIRECTORY, 0)
		must(t, err)
		unix.Close(fd)
		fd = next
		rel = append(rel, component)
	}
	defer unix.Close(fd)
	f, err := unix.Openat(fd, "leaf", unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL, 0o640)
	must(t, err)
	_, err = unix.Write(f, []byte("deep"))
	must(t, err)
	xattr := true
	if err := unix.Fsetxattr(f, "user.depth", []byte("25"), 0); err != nil {
		t.Logf("no user.* xattrs on %s (%v): the xattr is not checked", root, err)
		xattr = false
	}
	unix.Close(f)
	must(t, unix.Symlinkat("leaf", fd, "link"))

	entries, err := ScanDir(root)
	if err != nil {
		t.Fatalf("ScanDir of a tree deeper than PATH_MAX: %v", err)
	}
	if len(entries) != 1+25+2 {
		t.Fatalf("ScanDir found %d entries, want %d", len(entries), 1+25+2)
	}
	dir := strings.Join(rel, "/")
	byPath := map[string]Entry{}
	for _, e := range entries {
		byPath[e.Path] = e
	}
	leaf, ok := byPath[dir+"/leaf"]
	if !ok || leaf.Type != Reg || leaf.Size != 4 || leaf.Mode != 0o640 {
		t.Errorf("leaf = %+v, want a 4-byte regular file with mode 0640", leaf)
	}
	if sum := sha256.Sum256([]byte("deep")); leaf.Digest != hex.EncodeToString(sum[:]) {
		t.Errorf("leaf digest = %s, want the sha256 of %q", leaf.Digest, "deep")
	}
	if xattr && leaf.Xattrs["user.depth"] != "25" {
		t.Errorf("leaf xattrs = %v, want user.depth=25", leaf.Xattrs)
	}
	if l := byPath[dir+"/link"]; l.Type != Symlink || l.Link != "leaf" {
		t.Errorf("link = %+v, want a symlink to leaf", l)
	}
}
