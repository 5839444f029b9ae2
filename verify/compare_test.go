package verify

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// buildTree makes the same small tree every time it is called: files, a
// hard-link pair, a symlink, xattrs, a fifo and (as root) a device.
func buildTree(t *testing.T, dir string) {
	t.Helper()
	mkfile(t, dir, "etc/conf", "key=value\n", 0o644)
	mkfile(t, dir, "bin/tool", "#!/bin/sh\necho tool\n", 0o755)
	mkfile(t, dir, "hl/a", "shared content\n", 0o644)
	must(t, os.Link(filepath.Join(dir, "hl/a"), filepath.Join(dir, "hl/b")))
	must(t, os.Symlink("../etc/conf", filepath.Join(dir, "bin/conf-link")))
	must(t, unix.Setxattr(filepath.Join(dir, "etc/conf"), "user.tag", []byte("a"), 0))
	must(t, unix.Setxattr(filepath.Join(dir, "etc"), "user.dir", []byte("d"), 0))
	must(t, unix.Mkfifo(filepath.Join(dir, "fifo"), 0o644))
	if os.Geteuid() == 0 {
		must(t, unix.Mknod(filepath.Join(dir, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	}
}

func rewrite(t *testing.T, p, content string) {
	t.Helper()
	fi, err := os.Lstat(p)
	must(t, err)
	must(t, os.WriteFile(p, []byte(content), fi.Mode()))
}

func TestCompare(t *testing.T) {
	root := os.Geteuid() == 0
	type tc struct {
		name     string
		needRoot bool
		// mutate changes the "got" tree before times are normalised;
		// retime runs after normalisation (for mtime cases).
		mutate func(t *testing.T, dir string)
		retime func(t *testing.T, dir string)
		opts   Options
		want   []string // "kind path field"
	}
	tests := []tc{
		{name: "identical", mutate: func(*testing.T, string) {}},
		{
			name:   "setuid bit",
			mutate: func(t *testing.T, d string) { must(t, unix.Chmod(filepath.Join(d, "bin/tool"), 0o4755)) },
			want:   []string{"~ bin/tool mode"},
		},
		{
			name:   "one permission bit",
			mutate: func(t *testing.T, d string) { must(t, unix.Chmod(filepath.Join(d, "etc/conf"), 0o645)) },
			want:   []string{"~ etc/conf mode"},
		},
		{
			name:   "sticky dir",
			mutate: func(t *testing.T, d string) { must(t, unix.Chmod(filepath.Join(d, "etc"), 0o1755)) },
			want:   []string{"~ etc mode"},
		},
		{
			name:     "uid",
			needRoot: true,
			mutate:   func(t *testing.T, d string) { must(t, os.Lchown(filepath.Join(d, "etc/conf"), 70000, -1)) },
			want:     []string{"~ etc/conf uid"},
		},
		{
			name:     "gid of a symlink",
			needRoot: true,
			mutate:   func(t *testing.T, d string) { must(t, os.Lchown(filepath.Join(d, "bin/conf-link"), -1, 5)) },
			want:     []string{"~ bin/conf-link gid"},
		},
		{
			name:     "ownership ignored",
			needRoot: true,
			mutate:   func(t *testing.T, d string) { must(t, os.Lchown(filepath.Join(d, "etc/conf"), 1, 2)) },
			opts:     Options{IgnoreOwnership: true},
		},
		{
			name: "xattr value",
			mutate: func(t *testing.T, d string) {
				must(t, unix.Setxattr(filepath.Join(d, "etc/conf"), "user.tag", []byte("b"), 0))
			},
			want: []string{"~ etc/conf xattr user.tag"},
		},
		{
			name: "xattr value with a trailing NUL",
			mutate: func(t *testing.T, d string) {
				must(t, unix.Setxattr(filepath.Join(d, "etc/conf"), "user.tag", []byte("a\x00"), 0))
			},
			want: []string{"~ etc/conf xattr user.tag"},
		},
		{
			name:   "xattr removed from a dir",
			mutate: func(t *testing.T, d string) { must(t, unix.Removexattr(filepath.Join(d, "etc"), "user.dir")) },
			want:   []string{"~ etc xattr user.dir"},
		},
		{
			name: "xattr added",
			mutate: func(t *testing.T, d string) {
				must(t, unix.Setxattr(filepath.Join(d, "bin/tool"), "user.new", []byte("1"), 0))
			},
			want: []string{"~ bin/tool xattr user.new"},
		},
		{
			name: "xattr ignored by name",
			mutate: func(t *testing.T, d string) {
				must(t, unix.Setxattr(filepath.Join(d, "bin/tool"), "user.new", []byte("1"), 0))
			},
			opts: Options{IgnoreXattrs: func(name string) bool { return name == "user.new" }},
		},
		{
			name:     "security.capability",
			needRoot: true,
			mutate: func(t *testing.T, d string) {
				capNetRaw := "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
				must(t, unix.Setxattr(filepath.Join(d, "bin/tool"), "security.capability", []byte(capNetRaw), 0))
			},
			want: []string{"~ bin/tool xattr security.capability"},
		},
		{
			name:     "xattr on a symlink",
			needRoot: true,
			mutate: func(t *testing.T, d string) {
				must(t, unix.Lsetxattr(filepath.Join(d, "bin/conf-link"), "trusted.x", []byte("1"), 0))
			},
			want: []string{"~ bin/conf-link xattr trusted.x"},
		},
		{
			name:   "one content byte",
			mutate: func(t *testing.T, d string) { rewrite(t, filepath.Join(d, "etc/conf"), "key=valuf\n") },
			want:   []string{"~ etc/conf digest"},
		},
		{
			name:   "content grows",
			mutate: func(t *testing.T, d string) { rewrite(t, filepath.Join(d, "etc/conf"), "key=value\nmore\n") },
			want:   []string{"~ etc/conf size", "~ etc/conf digest"},
		},
		{
			name: "hard-link group split",
			mutate: func(t *testing.T, d string) {
				b := filepath.Join(d, "hl/b")
				must(t, os.Remove(b))
				mkfile(t, d, "hl/b", "shared content\n", 0o644)
			},
			want: []string{"~ hl/a hardlink", "~ hl/b hardlink"},
		},
		{
			name: "hard-link group joined",
			mutate: func(t *testing.T, d string) {
				p := filepath.Join(d, "bin/tool")
				must(t, os.Remove(p))
				must(t, os.Link(filepath.Join(d, "hl/a"), p))
			},
			want: []string{"~ bin/tool mode", "~ bin/tool size", "~ bin/tool digest", "~ bin/tool hardlink",
				"~ hl/a hardlink", "~ hl/b hardlink"},
		},
		{
			name:   "extra file",
			mutate: func(t *testing.T, d string) { mkfile(t, d, "etc/extra", "", 0o644) },
			want:   []string{"+ etc/extra "},
		},
		{
			name:   "missing file",
			mutate: func(t *testing.T, d string) { must(t, os.Remove(filepath.Join(d, "hl/b"))) },
			want:   []string{"~ hl/a hardlink", "- hl/b "},
		},
		{
			name:   "missing subtree",
			mutate: func(t *testing.T, d string) { must(t, os.RemoveAll(filepath.Join(d, "etc"))) },
			want:   []string{"- etc ", "- etc/conf "},
		},
		{
			name: "symlink target",
			mutate: func(t *testing.T, d string) {
				p := filepath.Join(d, "bin/conf-link")
				must(t, os.Remove(p))
				must(t, os.Symlink("/etc/conf", p))
			},
			want: []string{"~ bin/conf-link link"},
		},
		{
			name: "file became a dir",
			mutate: func(t *testing.T, d string) {
				p := filepath.Join(d, "etc/conf")
				must(t, os.Remove(p))
				must(t, os.Mkdir(p, 0o644))
			},
			want: []string{"~ etc/conf type"},
		},
		{
			name: "fifo became a file",
			mutate: func(t *testing.T, d string) {
				must(t, os.Remove(filepath.Join(d, "fifo")))
				mkfile(t, d, "fifo", "", 0o644)
			},
			want: []string{"~ fifo type"},
		},
		{
			name:     "device minor",
			needRoot: true,
			mutate: func(t *testing.T, d string) {
				p := filepath.Join(d, "null")
				must(t, os.Remove(p))
				must(t, unix.Mknod(p, unix.S_IFCHR|0o666, int(unix.Mkdev(1, 5))))
			},
			want: []string{"~ null devminor"},
		},
		{
			name:     "device major",
			needRoot: true,
			mutate: func(t *testing.T, d string) {
				p := filepath.Join(d, "null")
				must(t, os.Remove(p))
				must(t, unix.Mknod(p, unix.S_IFCHR|0o666, int(unix.Mkdev(300, 3))))
			},
			want: []string{"~ null devmajor"},
		},
		{
			name:     "char became block",
			needRoot: true,
			mutate: func(t *testing.T, d string) {
				p := filepath.Join(d, "null")
				must(t, os.Remove(p))
				must(t, unix.Mknod(p, unix.S_IFBLK|0o666, int(unix.Mkdev(1, 3))))
			},
			want: []string{"~ null type"},
		},
		{
			name:   "file mtime by one nanosecond",
			retime: func(t *testing.T, d string) { touch(t, filepath.Join(d, "etc/conf"), fixedNs+1) },
			want:   []string{"~ etc/conf mtime"},
		},
		{
			name:   "symlink mtime",
			retime: func(t *testing.T, d string) { touch(t, filepath.Join(d, "bin/conf-link"), fixedNs-1e9) },
			want:   []string{"~ bin/conf-link mtime"},
		},
		{
			name: "dir mtime kept by IgnoreDirMtime only for dirs",
			retime: func(t *testing.T, d string) {
				touch(t, filepath.Join(d, "etc"), 5)
				touch(t, filepath.Join(d, "etc/conf"), 5)
			},
			opts: Options{IgnoreDirMtime: true},
			want: []string{"~ etc/conf mtime"},
		},
		{
			name: "IgnoreMtime",
			retime: func(t *testing.T, d string) {
				touch(t, filepath.Join(d, "etc"), 5)
				touch(t, filepath.Join(d, "etc/conf"), 5)
			},
			opts: Options{IgnoreMtime: true},
		},
		{
			name:   "root mode",
			mutate: func(t *testing.T, d string) { must(t, os.Chmod(d, 0o700)) },
			want:   []string{"~  mode"},
		},
		{
			name:   "root ignored",
			mutate: func(t *testing.T, d string) { must(t, os.Chmod(d, 0o700)) },
			retime: func(t *testing.T, d string) { touch(t, d, 1) },
			opts:   Options{IgnoreRoot: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.needRoot && !root {
				t.Skip("needs root (chown, mknod, trusted/security xattrs)")
			}
			wantDir, gotDir := t.TempDir(), t.TempDir()
			buildTree(t, wantDir)
			buildTree(t, gotDir)
			must(t, os.Chmod(wantDir, 0o755))
			must(t, os.Chmod(gotDir, 0o755))
			if tt.mutate != nil {
				tt.mutate(t, gotDir)
			}
			setTimes(t, wantDir, fixedNs)
			setTimes(t, gotDir, fixedNs)
			if tt.retime != nil {
				tt.retime(t, gotDir)
			}
			want, err := ScanDir(wantDir)
			must(t, err)
			got, err := ScanDir(gotDir)
			must(t, err)

			diffs := Compare(want, got, tt.opts)
			var keys []string
			for _, d := range diffs {
				keys = append(keys, string(d.Kind)+" "+d.Path+" "+d.Field)
			}
			if !reflect.DeepEqual(keys, tt.want) {
				var lines []string
				for _, d := range diffs {
					lines = append(lines, d.String())
				}
				t.Errorf("Compare = %q, want %q\n%s", keys, tt.want, strings.Join(lines, "\n"))
			}
		})
	}
}

func TestCompareLists(t *testing.T) {
	want := []Entry{
		{Path: "", Type: Dir, Mode: 0o755},
		{Path: "a", Type: Reg, Mode: 0o644, Size: 1, Digest: "x"},
		{Path: "c", Type: Symlink, Mode: 0o777, Link: "a"},
	}
	got := []Entry{
		{Path: "", Type: Dir, Mode: 0o755},
		{Path: "b", Type: Fifo, Mode: 0o600},
		{Path: "c", Type: Symlink, Mode: 0o777, Link: "b"},
		{Path: "d\n", Type: Dir, Mode: 0o755},
	}
	var lines []string
	for _, d := range Compare(want, got, Options{}) {
		lines = append(lines, d.String())
	}
	wantLines := []string{
		`- "a": missing (want reg 0644 0:0 size 1)`,
		`+ "b": unexpected (got fifo 0600 0:0)`,
		`~ "c": link: want "a", got "b"`,
		`+ "d\n": unexpected (got dir 0755 0:0)`,
	}
	if !reflect.DeepEqual(lines, wantLines) {
		t.Errorf("Compare strings =\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(wantLines, "\n"))
	}
	if d := Compare(nil, nil, Options{}); d != nil {
		t.Errorf("Compare(nil, nil) = %v, want none", d)
	}
}

func TestDifferenceString(t *testing.T) {
	for _, tt := range []struct {
		d    Difference
		want string
	}{
		{Difference{Path: "", Kind: '~', Field: "mode", Want: "0755", Got: "0700"}, `~ (root): mode: want 0755, got 0700`},
		{Difference{Path: "x\xff", Kind: '~', Field: "mtime", Want: "1", Got: "2"}, `~ "x\xff": mtime: want 1, got 2`},
	} {
		if got := tt.d.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.d, got, tt.want)
		}
	}
}
