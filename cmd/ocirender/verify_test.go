package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocirender/ocirender/internal/imagetest"
)

// rewriteTar copies the tar at src to dst, passing every header and body through edit.
func rewriteTar(t *testing.T, src, dst string, edit func(h *tar.Header, body []byte) []byte) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	var out bytes.Buffer
	tr, tw := tar.NewReader(in), tar.NewWriter(&out)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		body = edit(h, body)
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write(body)
	}
	tw.Close()
	if err := os.WriteFile(dst, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyVerb(t *testing.T) {
	img := sample(t)
	work := t.TempDir()
	out := func(name string) string { return filepath.Join(work, name) }
	for _, f := range []string{"tar", "squashfs"} {
		if o, e, code := runCmd("export", "-q", "--format", f, "-o", out("ok."+f), img); code != 0 {
			t.Fatalf("export %s: exit %d, %s %s", f, code, o, e)
		}
	}
	rewriteTar(t, out("ok.tar"), out("flipped.tar"), func(h *tar.Header, body []byte) []byte {
		if h.Name == "etc/motd" {
			body[0] ^= 1
		}
		return body
	})
	rewriteTar(t, out("ok.tar"), out("chmod.tar"), func(h *tar.Header, body []byte) []byte {
		if h.Name == "bin/ping" {
			h.Mode ^= 0o001
			delete(h.PAXRecords, "SCHILY.xattr.user.note")
			delete(h.Xattrs, "user.note") //nolint:staticcheck // the writer still writes it
		}
		return body
	})
	if err := os.WriteFile(out("junk"), []byte("not an output"), 0o644); err != nil {
		t.Fatal(err)
	}
	ref := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		code int
		out  []string
		err  string
	}{
		{"tar", []string{"verify", out("ok.tar"), "--image", img}, 0, []string{"(tar) matches image", ": 7 entries"}, ""},
		{"squashfs", []string{"verify", out("ok.squashfs"), "--image", img}, 0, []string{"(squashfs) matches image"}, ""},
		{"one flipped byte", []string{"verify", out("flipped.tar"), "--image", img}, 1,
			[]string{`~ "etc/motd": digest: want `, "0 missing, 0 extra, 1 changed (digest 1)"}, "differs from image"},
		{"mode bit and xattr", []string{"verify", out("chmod.tar"), "--image", img}, 1,
			[]string{`~ "bin/ping": mode: want 4755, got 4754`, `~ "bin/ping": xattr user.note: want "hello", got (absent)`}, ""},
		{"ignore nothing relevant", []string{"verify", "--ignore-mtime", "--ignore-ownership", out("chmod.tar"), "--image", img}, 1, nil, ""},
		{"reference dir", []string{"verify", out("ok.tar"), "--reference", ref}, 1,
			[]string{`+ "etc/motd": unexpected`, "0 missing, 6 extra"}, ""},
		{"json", []string{"verify", "--json", out("flipped.tar"), "--image", img}, 1, []string{`"kind": "~"`, `"field": "digest"`}, ""},
		{"no image", []string{"verify", out("ok.tar")}, 2, nil, "--image IMAGE or --reference DIR"},
		{"both", []string{"verify", out("ok.tar"), "--image", img, "--reference", ref}, 2, nil, "either"},
		{"no output", []string{"verify", "--image", img}, 2, nil, "want one OUTPUT"},
		{"missing output", []string{"verify", out("none"), "--image", img}, 2, nil, "no such file"},
		{"unknown format", []string{"verify", out("junk"), "--image", img}, 2, nil, "not a directory, a tar or a squashfs"},
		{"missing image", []string{"verify", out("ok.tar"), "--image", out("none")}, 2, nil, "none"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, code := runCmd(tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d; stdout %q stderr %q", code, tc.code, stdout, stderr)
			}
			for _, s := range tc.out {
				if !strings.Contains(stdout, s) {
					t.Errorf("stdout lacks %q:\n%s", s, stdout)
				}
			}
			if tc.err != "" && !strings.Contains(stderr, tc.err) {
				t.Errorf("stderr = %q, want %q", stderr, tc.err)
			}
			if code != 0 && code != 2 && strings.Count(stderr, "\n") != 1 {
				t.Errorf("stderr = %q, want one line", stderr)
			}
		})
	}
	// The JSON document parses and counts.
	stdout, _, _ := runCmd("verify", "--json", out("chmod.tar"), "--image", img)
	var doc struct {
		Equal       bool
		Format      string
		Differences []map[string]string
		Summary     struct{ Changed, Differences int }
	}
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
		t.Fatalf("--json: %v\n%s", err, stdout)
	}
	if doc.Equal || doc.Format != "tar" || doc.Summary.Changed != 1 || doc.Summary.Differences != 2 ||
		doc.Differences[0]["want"] != "4755" || doc.Differences[0]["got"] != "4754" {
		t.Errorf("--json = %+v", doc)
	}
}

func TestDiffVerb(t *testing.T) {
	a := sample(t)
	b := filepath.Join(t.TempDir(), "b")
	layer := imagetest.Layer(imagetest.Dir("etc"), imagetest.Reg("etc/motd", "ho\n"),
		imagetest.Reg("odd\nname\xff", "x"), imagetest.Sym("link", "etc/other"),
		imagetest.Reg("new", "new").With(func(f *imagetest.Entry) { f.UID = 7 }))
	if _, err := imagetest.WriteLayout(b, "s", imagetest.GzipBlob(layer)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		code int
		out  []string
		err  string
	}{
		{"same", []string{"diff", a, a}, 0, []string{"are the same: 7 entries"}, ""},
		{"refs of one layout", []string{"diff", a, "--ref-a", "s", "--ref-b", "s"}, 0, []string{"are the same"}, ""},
		{"different", []string{"diff", a, b}, 1, []string{
			`- "bin": dir 0755 0:0`, `- "bin/ping": reg 4755 0:0 size 1`, `~ "etc/motd": digest: `,
			`~ "link": link: "etc/motd" -> "etc/other"`, `+ "new": reg 0644 7:0 size 3`,
			"2 removed, 1 added, 2 changed (digest 1, link 1)"}, "differ in 5 places"},
		{"stat", []string{"diff", "--stat", a, b}, 1, []string{"2 removed, 1 added, 2 changed (digest 1, link 1)\n"}, ""},
		{"json", []string{"diff", "--json", a, b}, 1, []string{`"removed": 2`, `"added": 1`, `"a": "dir 0755 0:0"`}, ""},
		{"one image, no refs", []string{"diff", a}, 2, nil, "--ref-a and --ref-b"},
		{"three images", []string{"diff", a, a, a}, 2, nil, "want IMAGE_A and IMAGE_B"},
		{"missing image", []string{"diff", a, filepath.Join(t.TempDir(), "none")}, 2, nil, "none"},
		{"missing ref", []string{"diff", a, "--ref-a", "s", "--ref-b", "nope"}, 2, nil, "nope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, code := runCmd(tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d; stdout %q stderr %q", code, tc.code, stdout, stderr)
			}
			for _, s := range tc.out {
				if !strings.Contains(stdout, s) {
					t.Errorf("stdout lacks %q:\n%s", s, stdout)
				}
			}
			if tc.err != "" && !strings.Contains(stderr, tc.err) {
				t.Errorf("stderr = %q, want %q", stderr, tc.err)
			}
			if tc.name == "stat" && strings.Count(stdout, "\n") != 1 {
				t.Errorf("--stat printed %q, want one line", stdout)
			}
		})
	}
}
