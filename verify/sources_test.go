package verify_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ocirender/ocirender/export"
	"github.com/ocirender/ocirender/index"
	"github.com/ocirender/ocirender/internal/imagetest"
	"github.com/ocirender/ocirender/squashfs"
	"github.com/ocirender/ocirender/verify"
)

func check(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// merged builds an image in code: two layers with a bit of everything.
func merged(t testing.TB) (*index.Index, []io.ReaderAt) {
	t.Helper()
	ix, raw, err := imagetest.Merge(
		[]imagetest.Entry{
			imagetest.Dir("etc"),
			imagetest.Reg("etc/conf", "key=value\n").With(func(f *imagetest.Entry) {
				f.Xattrs = map[string]string{"user.tag": "a", "trusted.t": "x"}
				f.Mtime = time.Unix(1600000000, 123456789)
			}),
			imagetest.Reg("etc/old", "old\n"),
			imagetest.Reg("bin/tool", strings.Repeat("tool ", 50000)).With(func(f *imagetest.Entry) { f.Mode = 0o4755 }),
			imagetest.Hard("bin/tool2", "bin/tool"),
			imagetest.Sym("bin/conf", "../etc/conf").With(func(f *imagetest.Entry) { f.Mode = 0o755 }),
			imagetest.Reg("empty", ""),
			{Name: "dev/null", Type: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3},
			{Name: "fifo", Type: tar.TypeFifo, Mode: 0o600, UID: 1000, GID: 1000},
			imagetest.Reg("odd\nname\xff", "odd"),
		},
		[]imagetest.Entry{
			imagetest.Whiteout("etc/old"),
			imagetest.Reg("etc/new", "new\n").With(func(f *imagetest.Entry) {
				f.Xattrs = map[string]string{"system.posix_acl_access": "\x02\x00\x00\x00", "user.x": "y"}
			}),
			imagetest.Hard("etc/tool3", "bin/tool"),
		},
	)
	check(t, err)
	layers := make([]io.ReaderAt, len(raw))
	for i, r := range raw {
		layers[i] = bytes.NewReader(r)
	}
	return ix, layers
}

func fromIndex(t testing.TB, ix *index.Index, layers []io.ReaderAt) []verify.Entry {
	t.Helper()
	want, err := verify.FromIndex(context.Background(), ix, verify.IndexOptions{Layers: layers, Workers: 3})
	check(t, err)
	return want
}

func noDiffs(t testing.TB, who string, want, got []verify.Entry) {
	t.Helper()
	for _, d := range verify.Compare(want, got, verify.Options{}) {
		t.Errorf("%s: %s", who, d)
	}
}

// TestSourcesAgree: the tar and the squashfs our exporters write of an index read back,
// without extracting, as the index itself.
func TestSourcesAgree(t *testing.T) {
	ix, layers := merged(t)
	want := fromIndex(t, ix, layers)
	if got := byPath(want)["bin/tool2"]; got.Inode != "bin/tool" || got.Mode != 0o4755 || got.Size != 250000 || got.Digest == "" {
		t.Errorf("FromIndex bin/tool2 = %+v, want a 250000-byte setuid file in the group of bin/tool", got)
	}
	if got := byPath(want)["bin/conf"]; got.Mode != 0o777 {
		t.Errorf("FromIndex symlink mode = %o, want 0777 whatever the layer said", got.Mode)
	}
	noLayers, err := verify.FromIndex(context.Background(), ix, verify.IndexOptions{})
	check(t, err)
	if d := byPath(noLayers)["bin/tool"].Digest; d != "" {
		t.Errorf("FromIndex without layers: digest %q, want none", d)
	}

	t.Run("tar", func(t *testing.T) {
		var buf bytes.Buffer
		check(t, export.Tar(context.Background(), &buf, ix, layers, export.TarOptions{}))
		got, err := verify.ScanTar(context.Background(), &buf)
		check(t, err)
		noDiffs(t, "ScanTar", want, got)
	})
	t.Run("squashfs", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "img.sqfs")
		f, err := os.Create(p)
		check(t, err)
		defer f.Close()
		check(t, squashfs.Write(context.Background(), f, ix, layers, squashfs.Options{BlockSize: 4096}))
		fi, err := f.Stat()
		check(t, err)
		sq, err := squashfs.Open(f, fi.Size())
		check(t, err)
		got, err := verify.ScanSquashfs(context.Background(), sq, 2)
		check(t, err)
		squashed := verify.Squashed(want)
		noDiffs(t, "ScanSquashfs", squashed, got)
		if x := byPath(squashed)["etc/new"].Xattrs; !reflect.DeepEqual(x, map[string]string{"user.x": "y"}) {
			t.Errorf("Squashed xattrs = %q, want only user.x", x)
		}
		if m := byPath(squashed)["etc/conf"].MtimeNs; m != 1600000000e9 {
			t.Errorf("Squashed mtime = %d, want whole seconds", m)
		}
		format, err := verify.DetectFormat(p)
		if err != nil || format != verify.FormatSquashfs {
			t.Errorf("DetectFormat(squashfs) = %v, %v", format, err)
		}
		out, err := verify.ScanOutput(context.Background(), p, format, 0)
		check(t, err)
		noDiffs(t, "ScanOutput", squashed, out)
	})
	t.Run("dir", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("skipped: the dir export sets owners, devices and trusted xattrs only as root")
		}
		dir := filepath.Join(t.TempDir(), "out")
		check(t, export.Dir(context.Background(), dir, ix, layers, export.DirOptions{}))
		got, err := verify.ScanOutput(context.Background(), dir, verify.FormatDir, 0)
		check(t, err)
		// The empty ACL is refused by the kernel: the export cannot set it, and says so.
		diffs := verify.Compare(want, got, verify.Options{IgnoreXattrs: func(name string) bool {
			return name == "system.posix_acl_access"
		}})
		for _, d := range diffs {
			t.Errorf("ScanDir of the dir export: %s", d)
		}
	})
}

func byPath(entries []verify.Entry) map[string]verify.Entry {
	m := map[string]verify.Entry{}
	for _, e := range entries {
		m[e.Path] = e
	}
	return m
}

// tarOf writes headers (and bodies for regular files) as a tar.
func tarOf(t testing.TB, format tar.Format, hs ...*tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range hs {
		body := ""
		if h.Typeflag == tar.TypeReg {
			body = h.Uname // the tests carry the body here
			h.Uname, h.Size = "", int64(len(body))
		}
		if h.Format == 0 {
			h.Format = format
		}
		check(t, tw.WriteHeader(h))
		if _, err := io.WriteString(tw, body); err != nil {
			t.Fatal(err)
		}
	}
	check(t, tw.Close())
	return buf.Bytes()
}

func reg(name, body string) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeReg, Name: name, Uname: body, Mode: 0o644, ModTime: time.Unix(1, 0)}
}

func TestScanTar(t *testing.T) {
	digest := func(s string) string {
		e, _ := verify.ScanTar(context.Background(), bytes.NewReader(tarOf(t, tar.FormatPAX, reg("x", s))))
		return e[0].Digest
	}
	for _, tc := range []struct {
		name    string
		headers []*tar.Header
		format  tar.Format
		want    []string // "path type mode size digest-of-body link group xattrs"
		err     string
	}{
		{name: "root and names", headers: []*tar.Header{
			{Typeflag: tar.TypeDir, Name: "./", Mode: 0o755}, {Typeflag: tar.TypeDir, Name: "./a/", Mode: 0o700},
			reg("/a/f", "x"), reg("a//g/../h", "y"),
		}, want: []string{` dir 0755`, `a dir 0700`, `a/f reg 0644 1 x`, `a/h reg 0644 1 y`}},
		{name: "hard links", headers: []*tar.Header{
			reg("a", "x"), {Typeflag: tar.TypeLink, Name: "b", Linkname: "a"}, {Typeflag: tar.TypeLink, Name: "./c", Linkname: "./b"},
			reg("d", "x"),
		}, want: []string{`a reg 0644 1 x group=a`, `b reg 0644 1 x group=a`, `c reg 0644 1 x group=a`, `d reg 0644 1 x`}},
		{name: "a link keeps the inode its target had", headers: []*tar.Header{
			reg("a", "old"), {Typeflag: tar.TypeLink, Name: "b", Linkname: "a"}, reg("a", "new"),
		}, want: []string{`a reg 0644 3 new`, `b reg 0644 3 old`}},
		{name: "last entry wins", headers: []*tar.Header{reg("a", "1"), reg("a", "22")},
			want: []string{`a reg 0644 2 22`}},
		{name: "link to a symlink", headers: []*tar.Header{
			{Typeflag: tar.TypeSymlink, Name: "s", Linkname: "t", Mode: 0o644}, {Typeflag: tar.TypeLink, Name: "s2", Linkname: "s"},
		}, want: []string{`s symlink 0777 0 link=t group=s`, `s2 symlink 0777 0 link=t group=s`}},
		{name: "xattrs", headers: []*tar.Header{
			{Typeflag: tar.TypeReg, Name: "f", Mode: 0o644, PAXRecords: map[string]string{
				"SCHILY.xattr.user.a": "\x00\xff", "SCHILY.xattr.user.empty": "",
				"LIBARCHIVE.xattr.user.x%20y": "AAEC", "LIBARCHIVE.xattr.user.raw": "AA"}},
		}, want: []string{`f reg 0644 0  xattrs=user.a="\x00\xff",user.raw="\x00",user.x y="\x00\x01\x02"`}},
		{name: "devices and fifos", headers: []*tar.Header{
			{Typeflag: tar.TypeChar, Name: "c", Mode: 0o666, Devmajor: 1, Devminor: 3},
			{Typeflag: tar.TypeBlock, Name: "b", Mode: 0o660, Devmajor: 511, Devminor: 70000},
			{Typeflag: tar.TypeFifo, Name: "p", Mode: 0o2600},
		}, want: []string{`b block 0660 dev=511,70000`, `c char 0666 dev=1,3`, `p fifo 2600`}},
		{name: "GNU format", format: tar.FormatGNU, headers: []*tar.Header{
			reg(strings.Repeat("long/", 40)+"f", "gnu"),
		}, want: []string{strings.Repeat("long/", 40) + `f reg 0644 3 gnu`}},
		{name: "leaves the root", headers: []*tar.Header{reg("../x", "")}, err: "leaves the root"},
		{name: "link to nothing", headers: []*tar.Header{{Typeflag: tar.TypeLink, Name: "b", Linkname: "a"}}, err: "no file before it"},
		{name: "link to a directory", headers: []*tar.Header{
			{Typeflag: tar.TypeDir, Name: "d/"}, {Typeflag: tar.TypeLink, Name: "b", Linkname: "d"},
		}, err: "no file before it"},
		{name: "volume header", format: tar.FormatGNU, headers: []*tar.Header{{Typeflag: 'V', Name: "label"}}, err: "makes no file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			format := tc.format
			if format == 0 {
				format = tar.FormatPAX
			}
			entries, err := verify.ScanTar(context.Background(), bytes.NewReader(tarOf(t, format, tc.headers...)))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("ScanTar = %v, want an error with %q", err, tc.err)
				}
				return
			}
			check(t, err)
			var got []string
			for _, e := range entries {
				got = append(got, describe(e, digest))
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ScanTar =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// describe is one line of TestScanTar's expectations; the body of a file is named by
// itself (its digest is looked up with digest).
func describe(e verify.Entry, digest func(string) string) string {
	s := e.Path + " " + e.Type.String() + " " + modeString(e.Mode)
	switch e.Type {
	case verify.Reg:
		body := ""
		for _, b := range []string{"", "x", "y", "old", "new", "1", "22", "gnu"} {
			if digest(b) == e.Digest {
				body = b
			}
		}
		s += " " + itoa(e.Size) + " " + body
	case verify.Symlink:
		s += " 0 link=" + e.Link
	case verify.Char, verify.Block:
		s += " dev=" + itoa(int64(e.Devmajor)) + "," + itoa(int64(e.Devminor))
	}
	if e.Inode != "" {
		s += " group=" + e.Inode
	}
	if len(e.Xattrs) > 0 {
		var xs []string
		for _, k := range sortedKeys(e.Xattrs) {
			xs = append(xs, k+"="+quote(e.Xattrs[k]))
		}
		s += " xattrs=" + strings.Join(xs, ",")
	}
	return s
}

func TestDetectFormat(t *testing.T) {
	dir := t.TempDir()
	files := map[string][]byte{
		"pax.tar":  tarOf(t, tar.FormatPAX, reg("a", "x")),
		"gnu.tar":  tarOf(t, tar.FormatGNU, reg("a", "x")),
		"ustar":    tarOf(t, tar.FormatUSTAR, reg("a", "x")),
		"img.sqfs": append(append([]byte("hsqs"), append(make([]byte, 24), 4, 0, 0, 0)...), make([]byte, 100)...), // 4.0, no more
		"tar.gz":   imagetest.Gzip(tarOf(t, tar.FormatPAX, reg("a", "x"))),
		"tar.zst":  imagetest.Zstd(tarOf(t, tar.FormatPAX, reg("a", "x"))),
		"text":     []byte("hello, world\n"),
		"empty":    nil,
	}
	for name, b := range files {
		check(t, os.WriteFile(filepath.Join(dir, name), b, 0o644))
	}
	check(t, os.Symlink("pax.tar", filepath.Join(dir, "link")))
	check(t, os.Symlink(".", filepath.Join(dir, "dirlink")))
	for _, tc := range []struct {
		name string
		want verify.Format
		err  string
	}{
		{"pax.tar", verify.FormatTar, ""}, {"gnu.tar", verify.FormatTar, ""}, {"ustar", verify.FormatTar, ""},
		{"img.sqfs", verify.FormatSquashfs, ""}, {".", verify.FormatDir, ""},
		{"tar.gz", "", "decompress"}, {"tar.zst", "", "decompress"}, {"text", "", "not a directory, a tar or a squashfs"},
		{"empty", "", "not a directory"}, {"link", verify.FormatTar, ""}, {"dirlink", "", "symlink to a directory"},
		{"missing", "", "no such file"},
	} {
		got, err := verify.DetectFormat(filepath.Join(dir, tc.name))
		if got != tc.want || (tc.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("DetectFormat(%s) = %q, %v; want %q, %q", tc.name, got, err, tc.want, tc.err)
		}
	}
	if _, err := verify.ScanOutput(context.Background(), filepath.Join(dir, "img.sqfs"), verify.FormatSquashfs, 0); !errors.Is(err, squashfs.ErrCorrupt) {
		t.Errorf("ScanOutput of a broken squashfs = %v, want ErrCorrupt", err)
	}
}

func modeString(m uint32) string { return fmt.Sprintf("%04o", m) }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func quote(s string) string { return strconv.Quote(s) }

func sortedKeys(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }
