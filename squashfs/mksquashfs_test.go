package squashfs_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ocirender/ocirender/squashfs"
	"github.com/ocirender/ocirender/verify"
)

func requireMksquashfs(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("mksquashfs"); err != nil {
		t.Skip("skipped: mksquashfs (squashfs-tools) is not installed; our writer's images are still read")
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func writeFile(t testing.TB, p string, body []byte, mode os.FileMode) {
	t.Helper()
	must(t, os.MkdirAll(filepath.Dir(p), 0o755))
	must(t, os.WriteFile(p, body, mode))
	must(t, os.Chmod(p, mode))
}

// sourceTree makes a directory with every file type mksquashfs stores (devices, owners and
// trusted./security. xattrs only as root), hard links, xattrs (values repeated, so that
// mksquashfs stores them out of line), sparse files, tails and a directory large enough for
// a directory index. Mtimes are set last, in whole seconds.
func sourceTree(t *testing.T) string {
	t.Helper()
	root := os.Geteuid() == 0
	dir := filepath.Join(t.TempDir(), "src")
	must(t, os.Mkdir(dir, 0o755))
	at := func(p string) string { return filepath.Join(dir, p) }
	const bs = 128 << 10
	writeFile(t, at("empty"), nil, 0o644)
	writeFile(t, at("small"), []byte("hello\n"), 0o600)
	writeFile(t, at("a/bs"), randomBytes(1, bs), 0o644)
	writeFile(t, at("a/bs+1"), randomBytes(2, bs+1), 0o644)
	writeFile(t, at("a/text"), []byte(strings.Repeat("lorem ipsum squashfs ", 30000)), 0o644)
	writeFile(t, at("a/text-copy"), []byte(strings.Repeat("lorem ipsum squashfs ", 30000)), 0o644)
	writeFile(t, at("a/setuid"), []byte("#!/bin/true\n"), 0o4755)
	writeFile(t, at("a/all-bits"), []byte("x"), 0o7777)
	must(t, os.Link(at("a/setuid"), at("a/setuid-link")))
	must(t, os.Link(at("a/setuid"), at("hard-at-root")))
	// A sparse file: holes of whole blocks between data.
	f, err := os.Create(at("sparse"))
	must(t, err)
	_, err = f.WriteAt([]byte("start"), 0)
	must(t, err)
	_, err = f.WriteAt([]byte("end"), 10*bs+5)
	must(t, err)
	must(t, f.Close())
	writeFile(t, at("zeros"), make([]byte, 3*bs+100), 0o644)
	must(t, os.Symlink("a/text", at("link")))
	must(t, os.Symlink(strings.Repeat("a/", 2000)+"z", at("long-link")))
	must(t, os.Link(at("link"), at("link2")))
	must(t, unix.Mkfifo(at("fifo"), 0o620))
	must(t, os.Link(at("fifo"), at("fifo2")))
	must(t, unix.Mknod(at("socket"), unix.S_IFSOCK|0o755, 0))
	must(t, os.Mkdir(at("sticky"), 0o1777))
	must(t, os.Chmod(at("sticky"), 0o1777))
	shared := strings.Repeat("shared value ", 5)
	must(t, unix.Setxattr(at("small"), "user.a", []byte(shared), 0))
	must(t, unix.Setxattr(at("small"), "user.b", []byte("short"), 0))
	must(t, unix.Setxattr(at("a"), "user.a", []byte(shared), 0))
	must(t, unix.Setxattr(at("a/text"), "user.bin", []byte("\x00\xff\x00"), 0))
	must(t, unix.Setxattr(at("a/text-copy"), "user.long", []byte(strings.Repeat("L", 1000)), 0))
	if root {
		must(t, os.Mkdir(at("dev"), 0o755))
		must(t, unix.Mknod(at("dev/null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
		must(t, unix.Mknod(at("dev/big"), unix.S_IFCHR|0o600, int(unix.Mkdev(511, 70000))))
		must(t, unix.Mknod(at("dev/loop0"), unix.S_IFBLK|0o660, int(unix.Mkdev(7, 0))))
		must(t, os.Lchown(at("dev/loop0"), 0, 6))
		must(t, os.Lchown(at("small"), 70000, 4294967294))
		must(t, os.Lchown(at("link"), 1000, 1000))
		must(t, unix.Setxattr(at("a/setuid"), "security.capability", []byte(capability), 0))
		must(t, unix.Setxattr(at("a/bs"), "trusted.t", []byte(shared), 0))
		must(t, unix.Lsetxattr(at("link"), "trusted.link", []byte("\x00\xff"), 0))
	}
	for i := range 700 {
		writeFile(t, at(fmt.Sprintf("big/%s-%04d", strings.Repeat("n", i%50), i)), []byte(fmt.Sprint(i)), 0o644)
	}
	// Mtimes last, children before their directories.
	var paths []string
	must(t, filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		paths = append(paths, p)
		return err
	}))
	for i := len(paths) - 1; i >= 0; i-- {
		sec := int64(1600000000 + i*1000)
		ts := []unix.Timespec{unix.NsecToTimespec(sec * 1e9), unix.NsecToTimespec(sec * 1e9)}
		must(t, unix.UtimesNanoAt(unix.AT_FDCWD, paths[i], ts, unix.AT_SYMLINK_NOFOLLOW))
	}
	return dir
}

func mksquashfs(t *testing.T, src string, args ...string) []byte {
	t.Helper()
	img := filepath.Join(t.TempDir(), "img.sqfs")
	args = append([]string{src, img, "-noappend", "-no-progress", "-quiet"}, args...)
	if out, err := exec.Command("mksquashfs", args...).CombinedOutput(); err != nil {
		t.Fatalf("mksquashfs %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	b, err := os.ReadFile(img)
	must(t, err)
	return b
}

// TestMksquashfs reads images mksquashfs made of one source tree, with each compressor and
// the options that change the layout, and requires the tree the source has.
func TestMksquashfs(t *testing.T) {
	requireMksquashfs(t)
	src := sourceTree(t)
	want, err := verify.ScanDir(src)
	must(t, err)
	want = verify.Squashed(want)
	for _, args := range [][]string{
		{},
		{"-comp", "xz"},
		{"-comp", "zstd", "-b", "4K"},
		{"-comp", "gzip", "-noI", "-noD", "-noF", "-noX", "-no-fragments"},
		{"-comp", "zstd", "-always-use-fragments", "-exports", "-no-duplicates"},
		{"-comp", "xz", "-b", "1M", "-Xdict-size", "50%"},
		{"-comp", "lz4"},
		{"-comp", "lz4", "-Xhc", "-b", "64K"},
	} {
		t.Run(strings.Join(append([]string{"mksquashfs"}, args...), " "), func(t *testing.T) {
			sq := open(t, mksquashfs(t, src, args...))
			same(t, "mksquashfs", want, readTree(t, sq))
			statAll(t, sq, want)
		})
	}
}

// TestMksquashfsUnsupported: compressors we do not read are refused by Open, clearly.
func TestMksquashfsUnsupported(t *testing.T) {
	requireMksquashfs(t)
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "f"), []byte("x"), 0o644)
	for _, comp := range []string{"lzo", "lzma"} {
		img := filepath.Join(t.TempDir(), "img.sqfs")
		if out, err := exec.Command("mksquashfs", src, img, "-noappend", "-comp", comp).CombinedOutput(); err != nil {
			t.Logf("mksquashfs -comp %s: %v (%s); not tested", comp, err, strings.TrimSpace(string(out)))
			continue
		}
		b, err := os.ReadFile(img)
		must(t, err)
		_, err = open2(b)
		if !errors.Is(err, squashfs.ErrUnsupported) || !strings.Contains(err.Error(), comp) {
			t.Errorf("Open of a %s image = %v, want ErrUnsupported naming %s", comp, err, comp)
		}
	}
}

// TestMksquashfsXzBCJ: mksquashfs -Xbcj x86 stores the blocks a BCJ filter shrinks with it;
// reading one is ErrUnsupported, said clearly, not a decoding error.
func TestMksquashfsXzBCJ(t *testing.T) {
	requireMksquashfs(t)
	src := t.TempDir()
	exe, err := os.Executable() // the test binary: x86 code when run on x86
	must(t, err)
	b, err := os.ReadFile(exe)
	must(t, err)
	writeFile(t, filepath.Join(src, "exe"), b[:min(len(b), 1<<20)], 0o755)
	img := filepath.Join(t.TempDir(), "img.sqfs")
	if out, err := exec.Command("mksquashfs", src, img, "-noappend", "-comp", "xz", "-Xbcj", "x86").CombinedOutput(); err != nil {
		t.Skipf("skipped: mksquashfs -Xbcj x86: %v (%s)", err, strings.TrimSpace(string(out)))
	}
	data, err := os.ReadFile(img)
	must(t, err)
	err = walkAll(data)
	if err != nil && (!errors.Is(err, squashfs.ErrUnsupported) || !strings.Contains(err.Error(), "BCJ")) {
		t.Errorf("reading a -Xbcj image = %v, want nil or ErrUnsupported naming BCJ", err)
	}
	t.Logf("reading a -Xbcj x86 image: %v", err)
}
