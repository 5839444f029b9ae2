package main

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocirender/ocirender/index"
	"github.com/ocirender/ocirender/internal/imagetest"
)

// TestMain keeps the index cache of these tests out of the user's.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ocirender-cmd-cache-")
	if err != nil {
		panic(err)
	}
	os.Setenv("XDG_CACHE_HOME", dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func sample(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "img")
	layer := imagetest.Layer(imagetest.Dir("etc"), imagetest.Reg("etc/motd", "hi\n"),
		imagetest.Reg("odd\nname\xff", "x"), imagetest.Sym("link", "etc/motd"),
		imagetest.Reg("bin/ping", "p").With(func(f *imagetest.Entry) {
			f.Mode = 0o4755
			f.Xattrs = map[string]string{"security.capability": "\x01\x00", "user.note": "hello"}
		}))
	if _, err := imagetest.WriteLayout(dir, "s", imagetest.GzipBlob(layer)); err != nil {
		t.Fatal(err)
	}
	return dir
}

func runCmd(args ...string) (stdout, stderr string, code int) {
	var o, e bytes.Buffer
	code = report(run(context.Background(), args, &o, &e), &e)
	return o.String(), e.String(), code
}

func TestVerbs(t *testing.T) {
	img := sample(t)
	for _, tc := range []struct {
		name string
		args []string
		code int
		out  []string // substrings of stdout
		err  string   // substring of stderr
	}{
		{"ls root", []string{"ls", img}, 0, []string{"bin\netc\nlink\nodd\\nname\\xff\n"}, ""},
		{"ls -R", []string{"ls", "-R", img, "/"}, 0, []string{"bin/ping\n", "etc/motd\n"}, ""},
		{"ls -l through a symlink", []string{"ls", "-l", img, "link"}, 0, []string{"-rw-r--r--   1     0     0          3 "}, ""},
		{"ls -l setuid", []string{"ls", "-l", img, "/bin"}, 0, []string{"-rwsr-xr-x", "ping"}, ""},
		{"stat", []string{"stat", img, "bin/ping"}, 0, []string{"Mode:   4755 (-rwsr-xr-x)", "Xattr:  security.capability=0x0100", `Xattr:  user.note="hello"`, "Layer:  0 (sha256:"}, ""},
		{"stat symlink", []string{"stat", img, "/link"}, 0, []string{"Type:   symlink", "Target: etc/motd"}, ""},
		{"stat -L", []string{"stat", "-L", img, "/link"}, 0, []string{"Path:   /etc/motd"}, ""},
		{"stat missing", []string{"stat", img, "/nope"}, 1, nil, "/nope: no such file or directory"},
		{"ls --layers", []string{"ls", "--layers", img}, 0, []string{"-\tbin\n", "0\tetc\n"}, ""},
		{"ls -l --layers", []string{"ls", "-l", "--layers", img, "/etc"}, 0, []string{"0\t-rw-r--r--   1     0     0          3 "}, ""},
		{"cat", []string{"cat", img, "/etc/motd"}, 0, []string{"hi\n"}, ""},
		{"cat through a symlink", []string{"cat", img, "link"}, 0, []string{"hi\n"}, ""},
		{"cat --no-follow", []string{"cat", "--no-follow", img, "link"}, 1, nil, "link: is a symlink"},
		{"cat a directory", []string{"cat", img, "/etc"}, 1, nil, "/etc: is a directory, not a regular file"},
		{"cat missing", []string{"cat", img, "/etc/nope"}, 1, nil, "/etc/nope: no such file or directory"},
		{"cat without a path", []string{"cat", img}, 2, nil, "want IMAGE PATH"},
		{"cat --no-cache", []string{"cat", "--no-cache", img, "bin/ping"}, 0, []string{"p"}, ""},
		{"no verb", nil, 2, nil, "no verb"},
		{"unknown verb", []string{"frob"}, 2, nil, `unknown verb "frob"`},
		{"bad flag", []string{"ls", "--frob", img}, 2, nil, "unknown flag"},
		{"export without -o", []string{"export", "--format", "tar", img}, 2, nil, "-o OUT is required"},
		{"export bad format", []string{"export", "--format", "zip", "-o", "x", img}, 2, nil, `unknown format "zip"`},
		{"export dir to stdout", []string{"export", "--format", "dir", "-o", "-", img}, 2, nil, "stdout"},
		{"missing image", []string{"ls", filepath.Join(t.TempDir(), "none")}, 1, nil, "none"},
		{"help", []string{"help"}, 0, []string{"ocirender export", "ocirender ls", "ocirender stat"}, ""},
		{"verb help", []string{"export", "--help"}, 0, []string{"--format", "--ref", "--platform"}, ""},
		{"help verb", []string{"help", "ls"}, 0, []string{"--long", "--recursive"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := runCmd(tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d; stderr %q", code, tc.code, errOut)
			}
			for _, s := range tc.out {
				if !strings.Contains(out, s) {
					t.Errorf("stdout lacks %q:\n%s", s, out)
				}
			}
			if tc.err != "" && !strings.Contains(errOut, tc.err) {
				t.Errorf("stderr = %q, want it to contain %q", errOut, tc.err)
			}
			if tc.code == 1 && strings.Count(errOut, "\n") != 1 {
				t.Errorf("stderr = %q, want one line", errOut)
			}
		})
	}
}

func TestExportTarToStdout(t *testing.T) {
	img := sample(t)
	var o, e bytes.Buffer
	if err := run(context.Background(), []string{"export", "-f", "tar", "-o", "-", img}, &o, &e); err != nil {
		t.Fatalf("export: %v (%s)", err, e.String())
	}
	tr := tar.NewReader(&o)
	var names []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
	want := "./ bin/ bin/ping etc/ etc/motd link odd\nname\xff"
	if strings.Join(names, " ") != want {
		t.Errorf("tar entries %q, want %q", strings.Join(names, " "), want)
	}
	if e.Len() != 0 {
		t.Errorf("stderr %q, want nothing (not a terminal)", e.String())
	}
}

func TestEscapeName(t *testing.T) {
	for in, want := range map[string]string{
		"plain": "plain", "ünïcödé": "ünïcödé", "a\nb": `a\nb`, "\xff": `\xff`, `a\b`: `a\\b`, "\x7f\t": `\x7f\t`,
	} {
		if got := escapeName(in); got != want {
			t.Errorf("escapeName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestModeString(t *testing.T) {
	for _, tc := range []struct {
		t    index.Type
		mode uint32
		want string
	}{
		{index.Reg, 0o644, "-rw-r--r--"}, {index.Dir, 0o1777, "drwxrwxrwt"}, {index.Dir, 0o1770, "drwxrwx--T"},
		{index.Reg, 0o4755, "-rwsr-xr-x"}, {index.Reg, 0o4644, "-rwSr--r--"}, {index.Reg, 0o2755, "-rwxr-sr-x"},
		{index.Symlink, 0o777, "lrwxrwxrwx"}, {index.Char, 0o620, "crw--w----"}, {index.Block, 0o660, "brw-rw----"},
		{index.Fifo, 0o600, "prw-------"}, {index.Socket, 0o755, "srwxr-xr-x"},
	} {
		if got := modeString(tc.t, tc.mode); got != tc.want {
			t.Errorf("modeString(%s, %o) = %q, want %q", tc.t, tc.mode, got, tc.want)
		}
	}
}
