package image

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestOpenByDigest picks an unnamed image, or a named one, by its manifest
// digest, which is then its ID.
func TestOpenByDigest(t *testing.T) {
	b, _, mb := twoImages(t)
	for _, path := range []string{b.dir(), b.tar()} {
		im, err := Open(path, Options{Ref: string(mb.Digest)})
		if err != nil {
			t.Fatalf("Open(%s, Ref %s) = %v", path, mb.Digest, err)
		}
		got, err := readLayers(im)
		if err != nil || len(got) != 1 || layerNames(t, got[0]) != "b" {
			t.Errorf("Open(%s, Ref %s) layers = %d, %v, want [b]", path, mb.Digest, len(got), err)
		}
		if im.ID != string(mb.Digest) || im.Ref != "b" {
			t.Errorf("Open(%s, Ref %s) = ID %s, Ref %q, want ID %s, Ref b", path, mb.Digest, im.ID, im.Ref, mb.Digest)
		}
		im.Close()
	}
}

func TestList(t *testing.T) {
	cases := []struct {
		name  string
		build func(t testing.TB) *layoutBuilder
		want  []string
	}{
		{"oci", func(t testing.TB) *layoutBuilder { b, _, _ := twoImages(t); return b }, []string{"a", "b"}},
		{"docker 25", docker25, []string{"busybox:latest", "alpine:3"}},
		{"legacy", func(t testing.TB) *layoutBuilder {
			b := newLayout(t)
			b.legacy([]string{"a:1", "a:latest"}, layerTar(t, "a"))
			b.legacy(nil, layerTar(t, "b"))
			return b.manifestJSON()
		}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := c.build(t)
			want := c.want
			if want == nil { // legacy: the unnamed image is listed by config digest
				want = []string{"a:1", "a:latest", "sha256:" + strings.TrimSuffix(b.docker[1].Config, ".json")}
			}
			for _, path := range []string{b.dir(), b.tar()} {
				got, err := List(path)
				if err != nil || strings.Join(got, ",") != strings.Join(want, ",") {
					t.Errorf("List(%s) = %q, %v, want %q", path, got, err, want)
				}
			}
		})
	}
	if _, err := List(filepath.Join(t.TempDir(), "nothing")); !errors.Is(err, ErrNotFound) {
		t.Errorf("List(missing) = %v, want ErrNotFound", err)
	}
}

func TestBlobReadAt(t *testing.T) {
	b, _ := simple(t)
	for _, path := range []string{b.dir(), b.tar()} {
		im, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		want, _ := readLayers(im)
		blob, err := im.LayerBlob(1)
		if err != nil {
			t.Fatal(err)
		}
		if blob.Digest != im.Layers[1].Digest || blob.Size != im.Layers[1].Size {
			t.Errorf("LayerBlob(1) = %+v, want layer %+v", blob, im.Layers[1])
		}
		cases := []struct {
			off, n  int64
			wantN   int
			wantErr error
		}{
			{0, blob.Size, int(blob.Size), nil},
			{1, blob.Size, int(blob.Size) - 1, io.EOF},
			{blob.Size - 3, 3, 3, nil},
			{blob.Size, 1, 0, io.EOF},
			{blob.Size + 10, 1, 0, io.EOF},
		}
		for _, c := range cases {
			p := make([]byte, c.n)
			n, err := blob.ReadAt(p, c.off)
			if n != c.wantN || err != c.wantErr {
				t.Errorf("ReadAt(%d bytes, %d) = %d, %v, want %d, %v", c.n, c.off, n, err, c.wantN, c.wantErr)
			}
			if !bytes.Equal(p[:n], want[1][c.off:c.off+int64(n)]) {
				t.Errorf("ReadAt(%d bytes, %d) read the wrong bytes", c.n, c.off)
			}
		}
		if _, err := blob.ReadAt(make([]byte, 1), -1); err == nil {
			t.Errorf("ReadAt(-1) = nil error")
		}
		if _, err := im.LayerBlob(2); !errors.Is(err, ErrNotFound) {
			t.Errorf("LayerBlob(2) = %v, want ErrNotFound", err)
		}
		must(t, im.Close())
		must(t, im.Close())
		if _, err := im.LayerBlob(0); err == nil {
			t.Errorf("LayerBlob after Close = nil error")
		}
	}
}

// TestOpenLayerConcurrent reads every layer from many goroutines at once
// (run it with -race): blobs of an archive share one *os.File.
func TestOpenLayerConcurrent(t *testing.T) {
	b := newLayout(t)
	var layers [][]byte
	for i := range 6 {
		layers = append(layers, gzipped(t, layerTar(t, fmt.Sprint("f", i))))
	}
	m, _ := b.image(imageSpec{layers: layers})
	b.top(m, "")
	b.oci()
	for _, path := range []string{b.dir(), b.tar()} {
		im, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make(chan error, 4*len(layers))
		for range 4 {
			for i := range im.Layers {
				wg.Go(func() {
					r, err := im.OpenLayer(i)
					if err != nil {
						errs <- err
						return
					}
					defer r.Close()
					data, err := io.ReadAll(r)
					if err == nil && !bytes.Equal(data, layers[i]) {
						err = fmt.Errorf("layer %d: wrong bytes", i)
					}
					if err != nil {
						errs <- err
					}
				})
			}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		im.Close()
	}
}

// TestOpenLayerStickyError checks that a failed verification stays failed.
func TestOpenLayerStickyError(t *testing.T) {
	b, m := simple(t)
	name := layerBlobName(t, b, m, 0)
	b.files[name] = layerTar(t, "z")
	im, err := Open(b.tar(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	r, err := im.OpenLayer(0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(r)
	var de *DigestError
	if !errors.As(err, &de) || de.Got == "" || de.Want != im.Layers[0].Digest {
		t.Fatalf("ReadAll = %v, want *DigestError with both digests", err)
	}
	if _, ok := err.(*DigestError); !ok {
		t.Errorf("ReadAll error is %T, want *DigestError itself", err)
	}
	if n, err2 := r.Read(make([]byte, 10)); n != 0 || err2 != err {
		t.Errorf("Read after failure = %d, %v, want 0, %v", n, err2, err)
	}
}

// TestHostileNames: names from the input never break an error onto two
// lines.
func TestHostileNames(t *testing.T) {
	b := newLayout(t)
	b.legacy([]string{"evil\nimage:1"}, layerTar(t, "a"))
	b.legacy([]string{"other:1"}, layerTar(t, "b"))
	b.manifestJSON()
	for _, path := range []string{b.dir(), b.tar()} {
		_, err := Open(path, Options{})
		if !errors.Is(err, ErrAmbiguous) || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), `evil\nimage:1`) {
			t.Errorf("Open(%s) = %q, want one line with the name escaped", path, err)
		}
	}
}

// TestWideIndex: thousands of index.json entries naming one manifest are
// one image, and the manifest is read once.
func TestWideIndex(t *testing.T) {
	b := newLayout(t)
	m, _ := b.image(imageSpec{layers: [][]byte{layerTar(t, "a")}})
	for i := range 5000 {
		b.top(m, fmt.Sprint("tag", i))
	}
	b.oci()
	path := b.dir()
	im, err := Open(path, Options{Ref: "tag4999"})
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	if im.Ref != "tag4999" || im.ID != string(m.Digest) {
		t.Errorf("Open(%s, tag4999) = Ref %q ID %s, want tag4999, %s", path, im.Ref, im.ID, m.Digest)
	}
	im2, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("Open(%s) without ref = %v, want the one image", path, err)
	}
	im2.Close()
}

// TestIndexDAG: indexes whose entries all name one child index, eight deep,
// with nothing for the platform at the bottom, resolve in linear time.
func TestIndexDAG(t *testing.T) {
	b := newLayout(t)
	m, _ := b.image(imageSpec{platform: "linux/s390x", layers: [][]byte{layerTar(t, "a")}})
	d := b.indexBlob(false, m)
	for range maxIndexDepth - 1 {
		var entries []v1.Descriptor
		for range 50 {
			entries = append(entries, d)
		}
		d = b.indexBlob(false, entries...)
	}
	b.top(d, "dag")
	b.oci()
	path := b.dir()
	done := make(chan error, 1)
	go func() { _, err := Open(path, Options{Platform: "linux/amd64"}); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "has linux/s390x") {
			t.Errorf("Open(%s) = %v, want ErrNotFound naming linux/s390x", path, err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Open of an index DAG did not finish")
	}
}
