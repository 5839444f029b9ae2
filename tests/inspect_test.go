package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestLsMatchesUmoci: `ocirender ls -R` lists exactly the paths of umoci's unpacked tree, and
// `ls -l` shows for each the mode string, link count, owner and size that lstat(2) gives on
// that tree.
func TestLsMatchesUmoci(t *testing.T) {
	requireRoot(t, "umoci unpack must mknod and chown")
	requireTools(t, "umoci")
	bin := ocirenderBin(t)
	ctx := testContext(t)
	work := t.TempDir()
	image := filepath.Join(work, "sample")
	writeSample(t, image)
	bundle := filepath.Join(work, "bundle")
	mustRun(t, ctx, "umoci", "unpack", "--image", image+":sample", bundle)
	rootfs := filepath.Join(bundle, "rootfs")

	var want []string
	filepath.Walk(rootfs, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		if p != rootfs {
			want = append(want, strings.TrimPrefix(p, rootfs+"/"))
		}
		return nil
	})
	sort.Strings(want)
	got := strings.Split(strings.TrimSpace(string(mustRun(t, ctx, bin, "ls", "-R", "--ref", "sample", image).stdout)), "\n")
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("ocirender ls -R:\n%s\nwant (umoci's tree):\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	long := strings.Split(strings.TrimSpace(string(mustRun(t, ctx, bin, "ls", "-l", "-R", "--ref", "sample", image).stdout)), "\n")
	if len(long) != len(want) {
		t.Fatalf("ls -l -R printed %d lines, want %d", len(long), len(want))
	}
	for i, line := range long {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(rootfs, want[i]), &st); err != nil {
			t.Fatal(err)
		}
		size := fmt.Sprint(st.Size)
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			size = "0" // a directory has no size in an image
		case unix.S_IFCHR, unix.S_IFBLK:
			size = fmt.Sprintf("%d,%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
		}
		f := strings.Fields(line)
		if len(f) < 7 {
			t.Fatalf("ls -l line %q: too few fields", line)
		}
		wantFields := []string{modeString(st.Mode), fmt.Sprint(nlink(st)), fmt.Sprint(st.Uid), fmt.Sprint(st.Gid), size}
		if strings.Join(f[:5], " ") != strings.Join(wantFields, " ") {
			t.Errorf("ls -l %s: %q, want %q (lstat of umoci's tree)", want[i], strings.Join(f[:5], " "), strings.Join(wantFields, " "))
		}
		mt := time.Unix(st.Mtim.Unix()).UTC().Format("2006-01-02 15:04:05.000000000")
		if st.Mode&unix.S_IFMT != unix.S_IFDIR && f[5]+" "+f[6] != mt {
			t.Errorf("ls -l %s: mtime %s %s, want %s", want[i], f[5], f[6], mt)
		}
	}
}

// nlink is the link count an index reports: directories count their subdirectories, as the
// kernel does on ext4; files count their names.
func nlink(st unix.Stat_t) uint64 { return uint64(st.Nlink) }

// modeString renders a mode as GNU ls does.
func modeString(m uint32) string {
	b := []byte("?rwxrwxrwx")
	switch m & unix.S_IFMT {
	case unix.S_IFDIR:
		b[0] = 'd'
	case unix.S_IFLNK:
		b[0] = 'l'
	case unix.S_IFREG:
		b[0] = '-'
	case unix.S_IFCHR:
		b[0] = 'c'
	case unix.S_IFBLK:
		b[0] = 'b'
	case unix.S_IFIFO:
		b[0] = 'p'
	case unix.S_IFSOCK:
		b[0] = 's'
	}
	for i := 0; i < 9; i++ {
		if m&(1<<(8-i)) == 0 {
			b[i+1] = '-'
		}
	}
	for _, s := range []struct {
		bit      uint32
		pos      int
		set, off byte
	}{{unix.S_ISUID, 3, 's', 'S'}, {unix.S_ISGID, 6, 's', 'S'}, {unix.S_ISVTX, 9, 't', 'T'}} {
		if m&s.bit != 0 {
			if b[s.pos] == '-' {
				b[s.pos] = s.off
			} else {
				b[s.pos] = s.set
			}
		}
	}
	return string(b)
}

// TestStat: `ocirender stat` reports what lstat(2) and getxattr(2) say of the same path in
// umoci's tree, follows symlinked parents inside the image, and fails cleanly on a missing path.
func TestStat(t *testing.T) {
	requireRoot(t, "umoci unpack must chown and set security.* xattrs")
	requireTools(t, "umoci")
	bin := ocirenderBin(t)
	ctx := testContext(t)
	work := t.TempDir()
	image := filepath.Join(work, imageName)
	writeSample(t, image)
	bundle := filepath.Join(work, "bundle")
	mustRun(t, ctx, "umoci", "unpack", "--image", image+":sample", bundle)
	rootfs := filepath.Join(bundle, "rootfs")

	for _, tc := range []struct{ arg, path string }{
		{"/usr/bin/tool2", "usr/bin/tool2"},
		{"/bin/through-symlink", "usr/bin/through-symlink"}, // bin -> usr/bin
		{"home/user/new", "home/user/new"},
		{"/dev/null", "dev/null"},
		{"/bin", "bin"},
		{"/tmp", "tmp"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			out := string(mustRun(t, ctx, bin, "stat", "--ref", "sample", image, tc.arg).stdout)
			fields := map[string]string{}
			for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
				k, v, _ := strings.Cut(l, ":")
				v = strings.TrimSpace(v)
				if k == "Xattr" {
					fields[k] += v + ";"
				} else {
					fields[k] = v
				}
			}
			var st unix.Stat_t
			if err := unix.Lstat(filepath.Join(rootfs, tc.path), &st); err != nil {
				t.Fatal(err)
			}
			want := map[string]string{
				"Path":  "/" + tc.path,
				"Mode":  fmt.Sprintf("%04o (%s)", st.Mode&0o7777, modeString(st.Mode)),
				"Owner": fmt.Sprintf("%d:%d", st.Uid, st.Gid),
				"Mtime": time.Unix(st.Mtim.Unix()).UTC().Format(time.RFC3339Nano),
			}
			if st.Mode&unix.S_IFMT == unix.S_IFREG || st.Mode&unix.S_IFMT == unix.S_IFLNK {
				want["Size"] = fmt.Sprint(st.Size)
			}
			if st.Mode&unix.S_IFMT != unix.S_IFDIR {
				want["Links"] = fmt.Sprint(st.Nlink)
			}
			if st.Mode&unix.S_IFMT == unix.S_IFLNK {
				want["Target"], _ = os.Readlink(filepath.Join(rootfs, tc.path))
			}
			if st.Mode&unix.S_IFMT == unix.S_IFCHR {
				want["Device"] = fmt.Sprintf("%d,%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
			}
			if x := xattrLines(t, filepath.Join(rootfs, tc.path)); x != "" {
				want["Xattr"] = x
			}
			for k, v := range want {
				if fields[k] != v {
					t.Errorf("stat %s: %s = %q, want %q (from umoci's tree)\n%s", tc.arg, k, fields[k], v, out)
				}
			}
			if _, ok := fields["Xattr"]; ok && want["Xattr"] == "" {
				t.Errorf("stat %s shows xattrs umoci's tree lacks: %s", tc.arg, fields["Xattr"])
			}
		})
	}

	r, err := run(ctx, bin, "stat", "--ref", "sample", image, "/no/such/file")
	if err != nil {
		t.Fatal(err)
	}
	checkFailure(t, r, 1, []string{"no such file"})
	r, err = run(ctx, bin, "stat", image)
	if err != nil {
		t.Fatal(err)
	}
	if r.code != 2 {
		t.Errorf("stat with a missing PATH: %v, want exit 2", r)
	}
}

// xattrLines renders the xattrs of p as `stat` does: name=value, values quoted when
// printable and in hex otherwise, sorted by name, each followed by ";".
func xattrLines(t *testing.T, p string) string {
	t.Helper()
	buf := make([]byte, 64<<10)
	n, err := unix.Llistxattr(p, buf)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range strings.Split(string(buf[:n]), "\x00") {
		if s != "" {
			names = append(names, s)
		}
	}
	sort.Strings(names)
	var out strings.Builder
	for _, name := range names {
		v := make([]byte, 64<<10)
		m, err := unix.Lgetxattr(p, name, v)
		if err != nil {
			t.Fatal(err)
		}
		val := fmt.Sprintf("%q", v[:m])
		for _, c := range v[:m] {
			if c < 0x20 || c >= 0x7f {
				val = fmt.Sprintf("0x%x", v[:m])
				break
			}
		}
		out.WriteString(name + "=" + val + ";")
	}
	return out.String()
}
