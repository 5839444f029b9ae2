package tests

import (
	"archive/tar"
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ocirender/ocirender/internal/imagetest"
)

// sampleLower and sampleUpper are the two layers of the small sample image:
// a bit of everything, in a few KiB, so that failures show up in seconds
// before the Debian image is even built.
func sampleLower() []imagetest.Entry {
	return []imagetest.Entry{
		{Name: "./", Type: tar.TypeDir, Mode: 0o755},
		{Name: "etc/", Type: tar.TypeDir},
		{Name: "etc/hostname", Body: "sample\n"},
		{Name: "etc/shadow", Body: "root:*:19000:0:99999:7:::\n", Mode: 0o640, GID: 42},
		{Name: "usr/", Type: tar.TypeDir},
		{Name: "usr/bin/", Type: tar.TypeDir},
		{Name: "usr/bin/tool", Body: "#!/bin/sh\necho tool\n", Mode: 0o4755,
			Xattrs: map[string]string{"user.origin": "sample", "security.capability": imagetest.CapNetRaw}},
		{Name: "usr/bin/tool2", Type: tar.TypeLink, Link: "usr/bin/tool"},
		{Name: "bin", Type: tar.TypeSymlink, Link: "usr/bin"},
		{Name: "tmp/", Type: tar.TypeDir, Mode: 0o1777},
		{Name: "dev/", Type: tar.TypeDir},
		{Name: "dev/null", Type: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3},
		{Name: "dev/fifo", Type: tar.TypeFifo, Mode: 0o600},
		{Name: "home/", Type: tar.TypeDir},
		{Name: "home/user/", Type: tar.TypeDir, Mode: 0o700, UID: 100000, GID: 100000},
		{Name: "home/user/big", Body: strings.Repeat("0123456789abcdef", 1<<16), UID: 100000, GID: 100000},
		{Name: "home/user/old", Body: "hidden by the opaque marker\n"},
	}
}

// sampleHostname is the content of etc/hostname in the upper layer; the
// bad-input tests flip a byte of it inside the uncompressed blob.
const sampleHostname = "changed by the upper layer\n"

func sampleUpper() []imagetest.Entry {
	return []imagetest.Entry{
		{Name: "etc/.wh.shadow"},
		{Name: "etc/hostname", Body: sampleHostname},
		{Name: "bin/through-symlink", Body: "lands in usr/bin\n"},
		{Name: "usr/bin/.wh.tool"}, // tool2 keeps the content
		{Name: "home/user/.wh..wh..opq"},
		{Name: "home/user/new", Body: "new\n"},
	}
}

// e2e are the defaults for what the end-to-end images' entries leave zero, not the
// package's: mtimes with nanoseconds, so PAX headers carry them, and symlinks 0777, as a
// file system has them.
var e2e = imagetest.Options{Mtime: time.Date(2020, 1, 2, 3, 4, 5, 123456789, time.UTC), SymlinkMode: 0o777}

// writeImage makes a layout at dir holding one image tagged ref.
func writeImage(t *testing.T, dir, ref string, layers ...imagetest.Blob) *imagetest.Layout {
	t.Helper()
	l, err := imagetest.CreateLayout(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.AddImage(ref, layers...); err != nil {
		t.Fatal(err)
	}
	return l
}

// writeSample makes the sample image at dir, tagged "sample": a gzip lower
// layer and an uncompressed upper layer.
func writeSample(t *testing.T, dir string) *imagetest.Layout {
	t.Helper()
	return writeImage(t, dir, "sample",
		imagetest.GzipBlob(e2e.Layer(sampleLower()...)),
		imagetest.TarBlob(e2e.Layer(sampleUpper()...)))
}

// TestSampleImageMatchesUmoci is the quick version of the Debian test.
func TestSampleImageMatchesUmoci(t *testing.T) {
	requireRoot(t, "umoci unpack and our dir export must mknod and chown")
	requireTools(t, "umoci")
	requireGNUTar(t)
	ocirenderBin(t)
	ctx := testContext(t)
	image := filepath.Join(t.TempDir(), "sample")
	writeSample(t, image)
	want := umociTree(t, ctx, image, "sample")
	compareWithOracle(t, ctx, image, "sample", want, nil, true)
}

// TestExportLayoutArchive: a layout packed in a .tar is read in place and
// gives the same bytes as the directory.
func TestExportLayoutArchive(t *testing.T) {
	requireGNUTar(t)
	bin := ocirenderBin(t)
	ctx := testContext(t)
	work := t.TempDir()
	image := filepath.Join(work, "sample")
	writeSample(t, image)
	archive := filepath.Join(work, "sample.tar")
	mustRun(t, ctx, "tar", "-cf", archive, "-C", image, ".")

	fromDir := mustRun(t, ctx, bin, exportArgs("tar", "-", image, "sample")...)
	fromArchive := mustRun(t, ctx, bin, exportArgs("tar", "-", archive, "sample")...)
	if len(fromDir.stdout) == 0 || !bytes.Equal(fromDir.stdout, fromArchive.stdout) {
		t.Errorf("export of %s: %d bytes; of the same layout as %s: %d bytes; want the same non-empty tar",
			image, len(fromDir.stdout), archive, len(fromArchive.stdout))
	}
}

// TestExportRefSelection: --ref picks a manifest by its ref.name; without
// it, a layout with several images is an error that lists them.
func TestExportRefSelection(t *testing.T) {
	bin := ocirenderBin(t)
	ctx := testContext(t)
	image := filepath.Join(t.TempDir(), "two")
	l := writeImage(t, image, "first", imagetest.GzipBlob(e2e.Layer(imagetest.Entry{Name: "which", Body: "first\n"})))
	if _, err := l.AddImage("second", imagetest.GzipBlob(e2e.Layer(imagetest.Entry{Name: "which", Body: "second\n"}))); err != nil {
		t.Fatal(err)
	}

	for _, ref := range []string{"first", "second"} {
		r := mustRun(t, ctx, bin, exportArgs("tar", "-", image, ref)...)
		tr := tar.NewReader(bytes.NewReader(r.stdout))
		found := false
		for {
			hdr, err := tr.Next()
			if err != nil {
				break
			}
			if strings.TrimPrefix(hdr.Name, "./") == "which" {
				body := new(bytes.Buffer)
				body.ReadFrom(tr)
				found = body.String() == ref+"\n"
			}
		}
		if !found {
			t.Errorf("export --ref %s: tar has no file \"which\" holding %q", ref, ref+"\n")
		}
	}

	r, err := run(ctx, bin, exportArgs("tar", "-", image, "")...)
	if err != nil {
		t.Fatal(err)
	}
	if r.code == 0 || !bytes.Contains(r.stderr, []byte("first")) || !bytes.Contains(r.stderr, []byte("second")) {
		t.Errorf("export without --ref of a two-image layout: %v; want a failure that lists first and second", r)
	}
	r, err = run(ctx, bin, exportArgs("tar", "-", image, "third")...)
	if err != nil {
		t.Fatal(err)
	}
	if r.code == 0 || !bytes.Contains(r.stderr, []byte("third")) {
		t.Errorf("export --ref third: %v; want a failure naming third", r)
	}
}
