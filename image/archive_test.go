package image

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tarMember is one header (and data) of a hand-made archive.
type tarMember struct {
	hdr  tar.Header
	data []byte
}

func reg(name string, data []byte) tarMember {
	return tarMember{tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(len(data)), Mode: 0o644}, data}
}

func symlink(name, target string) tarMember {
	return tarMember{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target}}
}

func hardlink(name, target string) tarMember {
	return tarMember{hdr: tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target}}
}

// sparseArchive is an archive holding one GNU PAX 1.0 sparse file "s",
// whose data span starts with its sparse map: not usable in place. Go's
// tar.Writer does not write these, so the PAX header is written as a
// regular member and retyped.
func sparseArchive(t *testing.T) string {
	t.Helper()
	var pax bytes.Buffer
	for _, kv := range []string{"GNU.sparse.major=1", "GNU.sparse.minor=0", "GNU.sparse.name=s", "GNU.sparse.realsize=3"} {
		rec := " " + kv + "\n"
		n := len(rec)
		for len(fmt.Sprint(n))+len(rec) != n {
			n = len(fmt.Sprint(n)) + len(rec)
		}
		fmt.Fprintf(&pax, "%d%s", n, rec)
	}
	data := make([]byte, 512+3)
	copy(data, "1\n0\n3\n")
	copy(data[512:], "abc")
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	must(t, tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "PaxHeaders/s", Size: int64(pax.Len()), Format: tar.FormatUSTAR}))
	_, err := tw.Write(pax.Bytes())
	must(t, err)
	must(t, tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "s", Size: int64(len(data)), Format: tar.FormatUSTAR}))
	_, err = tw.Write(data)
	must(t, err)
	must(t, tw.Close())
	raw := buf.Bytes()
	raw[156] = tar.TypeXHeader
	sum := 0
	copy(raw[148:156], "        ")
	for _, c := range raw[:512] {
		sum += int(c)
	}
	copy(raw[148:156], fmt.Sprintf("%06o\x00 ", sum))
	p := filepath.Join(t.TempDir(), "sparse.tar")
	must(t, os.WriteFile(p, raw, 0o644))
	return p
}

func writeArchive(t *testing.T, members ...tarMember) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, m := range members {
		must(t, tw.WriteHeader(&m.hdr))
		_, err := tw.Write(m.data)
		must(t, err)
	}
	must(t, tw.Close())
	p := filepath.Join(t.TempDir(), "a.tar")
	must(t, os.WriteFile(p, buf.Bytes(), 0o644))
	return p
}

// TestArchiveStore checks member lookup on hand-made archives.
func TestArchiveStore(t *testing.T) {
	cases := []struct {
		name    string
		members []tarMember
		open    string
		want    string // content, if wantErr is nil
		wantErr error
		msg     string
	}{
		{name: "plain", members: []tarMember{reg("a/b", []byte("hello"))}, open: "a/b", want: "hello"},
		{name: "dot slash prefix", members: []tarMember{reg("./a/b", []byte("x"))}, open: "a/b", want: "x"},
		{name: "root entry", members: []tarMember{{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "./", Mode: 0o755}}, reg("./a", []byte("x"))}, open: "a", want: "x"},
		{name: "file named ...", members: []tarMember{reg("...", []byte("x"))}, open: "...", want: "x"},
		{name: "leading slash", members: []tarMember{reg("/a", []byte("x"))}, open: "a", want: "x"},
		{name: "empty member", members: []tarMember{reg("e", nil)}, open: "e", want: ""},
		{name: "duplicate: last wins", members: []tarMember{reg("a", []byte("old")), reg("a", []byte("new"))}, open: "a", want: "new"},
		{name: "duplicate: later symlink wins", members: []tarMember{reg("a", []byte("old")), reg("b", []byte("bee")), symlink("a", "b")}, open: "a", want: "bee"},
		{name: "symlink relative", members: []tarMember{reg("x/layer.tar", []byte("L")), symlink("y/layer.tar", "../x/layer.tar")}, open: "y/layer.tar", want: "L"},
		{name: "symlink absolute is archive-rooted", members: []tarMember{reg("x", []byte("L")), symlink("y/z", "/x")}, open: "y/z", want: "L"},
		{name: "hard link", members: []tarMember{reg("x/f", []byte("H")), hardlink("y", "x/f")}, open: "y", want: "H"},
		{name: "symlink chain", members: []tarMember{reg("c", []byte("C")), symlink("b", "c"), symlink("a", "b")}, open: "a", want: "C"},
		{name: "missing", members: []tarMember{reg("a", nil)}, open: "b", wantErr: ErrNotFound, msg: "b: missing"},
		{name: "dangling symlink", members: []tarMember{symlink("a", "nowhere")}, open: "a", wantErr: ErrNotFound, msg: "link to nowhere"},
		{name: "symlink loop", members: []tarMember{symlink("a", "b"), symlink("b", "a")}, open: "a", wantErr: ErrInvalid, msg: "links"},
		{name: "symlink escapes", members: []tarMember{symlink("a/b", "../../../etc/passwd")}, open: "a/b", wantErr: ErrInvalid, msg: "escapes"},
		{name: "directory", members: []tarMember{{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "d/", Mode: 0o755}}}, open: "d", wantErr: ErrInvalid, msg: "not a regular file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, err := os.Open(writeArchive(t, c.members...))
			must(t, err)
			s, err := openArchiveStore(f)
			if err != nil {
				t.Fatalf("openArchiveStore = %v", err)
			}
			defer s.close()
			m, err := s.open(c.open)
			if c.wantErr != nil {
				if !errors.Is(err, c.wantErr) || !strings.Contains(err.Error(), c.msg) {
					t.Fatalf("open(%q) = %v, want %v containing %q", c.open, err, c.wantErr, c.msg)
				}
				return
			}
			if err != nil {
				t.Fatalf("open(%q) = %v", c.open, err)
			}
			got, err := readMember(m, 1<<20)
			if err != nil || string(got) != c.want {
				t.Errorf("open(%q) reads %q, %v, want %q", c.open, got, err, c.want)
			}
		})
	}
}

func TestArchiveSparse(t *testing.T) {
	p := sparseArchive(t)
	data, _ := os.ReadFile(p)
	tr := tar.NewReader(bytes.NewReader(data))
	if hdr, err := tr.Next(); err != nil || hdr.Name != "s" || hdr.Size != 3 {
		t.Fatalf("fixture: Next = %+v, %v, want sparse s of 3 bytes", hdr, err)
	}
	f, err := os.Open(p)
	must(t, err)
	s, err := openArchiveStore(f)
	must(t, err)
	defer s.close()
	if _, err := s.open("s"); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("open(sparse) = %v, want ErrInvalid: not a regular file", err)
	}
}

// TestArchiveRejected checks archives Open refuses as a whole.
func TestArchiveRejected(t *testing.T) {
	b, _ := simple(t)
	good := b.tarBytes()
	cases := []struct {
		name    string
		data    func(t *testing.T) []byte
		wantErr error
		msg     string
	}{
		{"member escapes", func(t *testing.T) []byte {
			data, _ := os.ReadFile(writeArchive(t, reg("../evil", []byte("x")), reg("index.json", []byte("{}"))))
			return data
		}, ErrInvalid, `archive member name "../evil": escapes the image root`},
		{"root escapes", func(t *testing.T) []byte {
			data, _ := os.ReadFile(writeArchive(t, tarMember{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "../", Mode: 0o755}}))
			return data
		}, ErrInvalid, "escapes"},
		{"member escapes after cleaning", func(t *testing.T) []byte {
			data, _ := os.ReadFile(writeArchive(t, reg("a/../../evil", []byte("x"))))
			return data
		}, ErrInvalid, "escapes"},
		{"gzip compressed", func(t *testing.T) []byte { return gzipped(t, good) }, ErrUnsupported, "gzip-compressed archive"},
		{"truncated", func(t *testing.T) []byte { return good[:len(good)/2+100] }, ErrInvalid, "bad tar archive"},
		{"not a tar", func(t *testing.T) []byte { return bytes.Repeat([]byte("junk"), 300) }, ErrInvalid, "bad tar archive"},
		{"empty file", func(t *testing.T) []byte { return nil }, ErrNotFound, "no index.json or manifest.json"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "image.tar")
			must(t, os.WriteFile(p, c.data(t), 0o644))
			im, err := Open(p, Options{})
			if err == nil {
				im.Close()
				t.Fatalf("Open(%s) = ok, want %v", c.name, c.wantErr)
			}
			checkErr(t, p, err, c.wantErr, c.msg)
		})
	}
}

// TestArchiveDuplicateIndex: a later index.json replaces an earlier one.
func TestArchiveDuplicateIndex(t *testing.T) {
	b, _ := simple(t)
	good := b.files["index.json"]
	var members []tarMember
	members = append(members, reg("index.json", []byte("junk")))
	for name, data := range b.files {
		members = append(members, reg(name, data))
	}
	members = append(members, reg("index.json", good))
	im, err := Open(writeArchive(t, members...), Options{})
	if err != nil {
		t.Fatalf("Open = %v, want the last index.json to win", err)
	}
	im.Close()
}
