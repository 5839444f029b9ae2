package ocirender_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocirender/ocirender"
	"github.com/ocirender/ocirender/export"
	"github.com/ocirender/ocirender/image"
	"github.com/ocirender/ocirender/internal/imagetest"
)

var (
	base = imagetest.Layer(imagetest.Dir("etc"), imagetest.Reg("etc/a", "alpha"), imagetest.Reg("etc/b", strings.Repeat("b", 100000)),
		imagetest.Sym("lib", "usr/lib"), imagetest.Dir("usr/lib"), imagetest.Reg("usr/lib/x", "x"), imagetest.Hard("etc/a2", "etc/a"))
	upper = imagetest.Layer(imagetest.Whiteout("etc/b"), imagetest.Reg("lib/y", "through the symlink"), imagetest.Reg("etc/a", "new alpha"))
)

// tarListing exports img as tar and lists it: name, type, mode, link and content digest.
func tarListing(t *testing.T, img *ocirender.Image) string {
	t.Helper()
	var buf bytes.Buffer
	if err := export.Tar(context.Background(), &buf, img.Index, img.Content(), export.TarOptions{}); err != nil {
		t.Fatalf("export.Tar: %v", err)
	}
	tr := tar.NewReader(&buf)
	var out []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("reading our tar: %v", err)
		}
		b, _ := io.ReadAll(tr)
		sum := sha256.Sum256(b)
		out = append(out, fmt.Sprintf("%s %c %o %q %s", h.Name, h.Typeflag, h.Mode, h.Linkname, hex.EncodeToString(sum[:4])))
	}
	return strings.Join(out, "\n")
}

func open(t *testing.T, dir string) *ocirender.Image {
	t.Helper()
	img, err := ocirender.Open(context.Background(), dir, ocirender.Options{Content: true, TempDir: t.TempDir()})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { img.Close() })
	return img
}

// TestCompressionsAgree: the same layers stored uncompressed, gzip and zstd give the same tar.
func TestCompressionsAgree(t *testing.T) {
	var want string
	for _, c := range []struct {
		name string
		blob func([]byte) imagetest.Blob
	}{{"tar", imagetest.TarBlob}, {"gzip", imagetest.GzipBlob}, {"zstd", imagetest.ZstdBlob}} {
		dir := t.TempDir()
		if _, err := imagetest.WriteLayout(dir, "", c.blob(base), c.blob(upper)); err != nil {
			t.Fatal(err)
		}
		got := tarListing(t, open(t, dir))
		if want == "" {
			want = got
			for _, must := range []string{"etc/a 0 644 \"\"", "etc/a2 0 644 \"\" 8ed3f6ad", "usr/lib/y 0", "lib 2 644 \"usr/lib\""} {
				if !strings.Contains(got, must) {
					t.Errorf("%s: tar listing lacks %q:\n%s", c.name, must, got)
				}
			}
			if strings.Contains(got, "etc/b") {
				t.Errorf("%s: whited-out etc/b exported:\n%s", c.name, got)
			}
			continue
		}
		if got != want {
			t.Errorf("%s layers give\n%s\nwant (from tar layers)\n%s", c.name, got, want)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	good := func(t *testing.T) string {
		dir := t.TempDir()
		if _, err := imagetest.WriteLayout(dir, "", imagetest.GzipBlob(base), imagetest.GzipBlob(upper)); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	layerPath := func(t *testing.T, dir string, i int) string {
		img, err := image.Open(dir, image.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer img.Close()
		return filepath.Join(dir, "blobs", "sha256", img.Layers[i].Digest.Encoded())
	}
	for _, tc := range []struct {
		name    string
		breakIt func(t *testing.T, dir string) string // returns the image to open
		want    string
	}{
		{"flipped byte in a layer", func(t *testing.T, dir string) string {
			p := layerPath(t, dir, 1)
			b, _ := os.ReadFile(p)
			b[len(b)-1] ^= 1
			os.WriteFile(p, b, 0o644)
			return dir
		}, "layer 1"},
		{"truncated gzip", func(t *testing.T, dir string) string {
			p := layerPath(t, dir, 0)
			b, _ := os.ReadFile(p)
			os.WriteFile(p, b[:len(b)/2], 0o644)
			return dir
		}, "layer 0"},
		{"missing blob", func(t *testing.T, dir string) string { os.Remove(layerPath(t, dir, 0)); return dir }, "layer 0"},
		{"corrupt header in an uncompressed layer blames the digest", func(t *testing.T, _ string) string {
			dir := t.TempDir()
			imagetest.WriteLayout(dir, "", imagetest.TarBlob(base))
			p := layerPath(t, dir, 0)
			b, _ := os.ReadFile(p)
			b[600] ^= 0xff // inside the second tar header: the scan fails before the blob's end
			os.WriteFile(p, b, 0o644)
			return dir
		}, "digest mismatch"},
		{"escaping name", func(t *testing.T, _ string) string {
			dir := t.TempDir()
			imagetest.WriteLayout(dir, "", imagetest.GzipBlob(imagetest.Layer(imagetest.Reg("../../etc/evil", "x"))))
			return dir
		}, "escapes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := tc.breakIt(t, good(t))
			img, err := ocirender.Open(context.Background(), dir, ocirender.Options{Content: true, TempDir: t.TempDir()})
			if err == nil {
				img.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("Open error %q, want one line mentioning %q", err, tc.want)
			}
		})
	}
}

func TestCancel(t *testing.T) {
	dir := t.TempDir()
	imagetest.WriteLayout(dir, "", imagetest.GzipBlob(base))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := ocirender.Open(ctx, dir, ocirender.Options{Content: true})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Open(cancelled) = %v, want context.Canceled", err)
	}
}
