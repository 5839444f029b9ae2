package tests

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocirender/ocirender/internal/imagetest"
)

// imageName is the base name of every broken image: the error line must
// name it (DESIGN §8: "a clear one-line error naming the image").
const imageName = "subject"

// withUpper writes the sample's lower layer plus one hand-made layer.
func withUpper(entries ...imagetest.Entry) func(t *testing.T, image string) {
	return func(t *testing.T, image string) {
		writeImage(t, image, "sample",
			imagetest.GzipBlob(e2e.Layer(sampleLower()...)),
			imagetest.GzipBlob(e2e.Layer(entries...)))
	}
}

var badImages = []struct {
	name string
	// make writes the broken image at image (which does not exist yet).
	make func(t *testing.T, image string)
	// words: the error line mentions at least one (case-insensitive).
	words []string
}{
	{
		name: "blob does not match its digest",
		make: func(t *testing.T, image string) {
			l := writeSample(t, image)
			m, err := l.Manifest("sample")
			if err != nil {
				t.Fatal(err)
			}
			// The upper layer is an uncompressed tar: flip one content byte,
			// the tar stays valid and only the digest check can notice.
			p := l.BlobPath(m.Layers[1].Digest)
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			i := bytes.Index(data, []byte(sampleHostname))
			if i < 0 {
				t.Fatal("sample upper layer lacks the hostname content")
			}
			data[i] ^= 0x20
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
		},
		words: []string{"digest", "sha256", "checksum", "mismatch"},
	},
	{
		name:  "entry escapes the root",
		make:  withUpper(imagetest.Entry{Name: "../escape", Body: "out\n"}),
		words: []string{"..", "escape"},
	},
	{
		name:  "entry escapes the root after cleaning",
		make:  withUpper(imagetest.Entry{Name: "etc/../../escape2", Body: "out\n"}),
		words: []string{"..", "escape"},
	},
	{
		name: "truncated gzip layer",
		make: func(t *testing.T, image string) {
			lower := imagetest.GzipBlob(e2e.Layer(sampleLower()...))
			lower.Data = lower.Data[:len(lower.Data)/2] // the manifest gets the truncated digest
			writeImage(t, image, "sample", lower)
		},
		words: []string{"gzip", "eof", "truncat", "corrupt", "flate", "unexpected end"},
	},
	{
		name: "index.json is not JSON",
		make: func(t *testing.T, image string) {
			writeSample(t, image)
			if err := os.WriteFile(filepath.Join(image, "index.json"), []byte("this is not JSON\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		},
		words: []string{"index.json", "json"},
	},
	{
		name: "a layer blob is missing",
		make: func(t *testing.T, image string) {
			l := writeSample(t, image)
			m, err := l.Manifest("sample")
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(l.BlobPath(m.Layers[0].Digest)); err != nil {
				t.Fatal(err)
			}
		},
		words: []string{"blob", "missing", "no such file", "not found", "not exist"},
	},
	{
		name: "the config blob is missing",
		make: func(t *testing.T, image string) {
			l := writeSample(t, image)
			m, err := l.Manifest("sample")
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(l.BlobPath(m.Config.Digest)); err != nil {
				t.Fatal(err)
			}
		},
		words: []string{"config", "blob", "missing", "no such file", "not found", "not exist"},
	},
	{
		name: "empty layout directory",
		make: func(t *testing.T, image string) {
			if err := os.Mkdir(image, 0o755); err != nil {
				t.Fatal(err)
			}
		},
		words: []string{"index.json", "oci-layout", "manifest.json", "layout", "no image"},
	},
	{
		name:  "image does not exist",
		make:  func(*testing.T, string) {},
		words: []string{"no such file", "not exist", "not found"},
	},
	{
		name:  "hard link to a missing target",
		make:  withUpper(imagetest.Entry{Name: "etc/link", Type: tar.TypeLink, Link: "etc/nope"}),
		words: []string{"nope"},
	},
	{
		name:  "hard link to a directory",
		make:  withUpper(imagetest.Entry{Name: "etc/link", Type: tar.TypeLink, Link: "usr/bin"}),
		words: []string{"director", "usr/bin"},
	},
	{
		name:  "hard link escapes the root",
		make:  withUpper(imagetest.Entry{Name: "etc/link", Type: tar.TypeLink, Link: "../outside"}),
		words: []string{"..", "outside"},
	},
	{
		name: "symlink loop in a parent",
		make: withUpper(
			imagetest.Entry{Name: "loop-a", Type: tar.TypeSymlink, Link: "loop-b"},
			imagetest.Entry{Name: "loop-b", Type: tar.TypeSymlink, Link: "loop-a"},
			imagetest.Entry{Name: "loop-a/file", Body: "unreachable\n"}),
		words: []string{"loop", "too many", "levels"},
	},
	{
		name:  "whiteout with an empty name",
		make:  withUpper(imagetest.Entry{Name: "etc/.wh."}),
		words: []string{".wh."},
	},
	{
		name:  "root entry is a symlink",
		make:  withUpper(imagetest.Entry{Name: "./", Type: tar.TypeSymlink, Link: "/tmp"}),
		words: []string{"root"},
	},
}

// TestExportBadInput: every broken image makes every export fail with exit
// status 1 and exactly one line on stderr that names the image and the
// problem, and leaves nothing next to OUT (no output, no temporary file).
func TestExportBadInput(t *testing.T) {
	bin := ocirenderBin(t)
	ctx := testContext(t)
	for _, tc := range badImages {
		t.Run(tc.name, func(t *testing.T) {
			image := filepath.Join(t.TempDir(), imageName)
			tc.make(t, image)
			for _, format := range []string{"dir", "tar", "tar-stdout"} {
				t.Run(format, func(t *testing.T) {
					if format == "dir" && os.Geteuid() != 0 {
						t.Skip("skipped: as non-root a dir export may print an ownership notice besides the error")
					}
					parent := t.TempDir()
					out := filepath.Join(parent, "out")
					args := exportArgs(format, out, image, "")
					if format == "tar-stdout" {
						args = exportArgs("tar", "-", image, "")
					}
					r, err := run(ctx, bin, args...)
					if err != nil {
						t.Fatal(err)
					}
					checkFailure(t, r, 1, tc.words)
					if left, _ := os.ReadDir(parent); len(left) > 0 {
						var names []string
						for _, e := range left {
							names = append(names, e.Name())
						}
						t.Errorf("export left %q next to OUT; want nothing", names)
					}
				})
			}
		})
	}
}

// checkFailure requires exit status code and one stderr line that names
// the image and one of words.
func checkFailure(t *testing.T, r result, code int, words []string) {
	t.Helper()
	if r.code != code {
		t.Errorf("exit status %d, want %d; stderr:\n%s", r.code, code, r.stderr)
	}
	msg := strings.TrimRight(string(r.stderr), "\n")
	if msg == "" || strings.Contains(msg, "\n") {
		t.Fatalf("stderr = %q, want exactly one line", r.stderr)
	}
	if strings.Contains(msg, "panic") || strings.Contains(msg, "goroutine ") {
		t.Errorf("stderr = %q, looks like a crash", msg)
	}
	if !strings.Contains(msg, imageName) {
		t.Errorf("stderr = %q, want it to name the image %q", msg, imageName)
	}
	lower := strings.ToLower(msg)
	for _, w := range words {
		if strings.Contains(lower, strings.ToLower(w)) {
			return
		}
	}
	t.Errorf("stderr = %q, want it to say what is wrong (one of %q)", msg, words)
}

// TestExportUsage: bad command lines exit with status 2 and create nothing.
func TestExportUsage(t *testing.T) {
	bin := ocirenderBin(t)
	ctx := testContext(t)
	image := filepath.Join(t.TempDir(), imageName)
	writeSample(t, image)
	for _, tc := range []struct {
		name string
		args func(out string) []string
	}{
		{"no arguments", func(string) []string { return []string{"export"} }},
		{"unknown verb", func(string) []string { return []string{"frobnicate", image} }},
		{"unknown format", func(out string) []string { return exportArgs("nope", out, image, "") }},
		{"unknown flag", func(out string) []string {
			return []string{"export", "--no-such-flag", "--format", "tar", "-o", out, image}
		}},
		{"two images", func(out string) []string { return []string{"export", "--format", "tar", "-o", out, image, image} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parent := t.TempDir()
			r, err := run(ctx, bin, tc.args(filepath.Join(parent, "out"))...)
			if err != nil {
				t.Fatal(err)
			}
			if r.code != 2 {
				t.Errorf("exit status %d, want 2 (usage); stderr:\n%s", r.code, r.stderr)
			}
			if len(bytes.TrimSpace(r.stderr)) == 0 {
				t.Errorf("stderr is empty, want a usage message")
			}
			if left, _ := os.ReadDir(parent); len(left) > 0 {
				t.Errorf("a usage error left %d files next to OUT; want none", len(left))
			}
		})
	}
}
