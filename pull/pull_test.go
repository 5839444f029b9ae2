package pull

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/ocirender/ocirender/internal/imagetest"
	"github.com/ocirender/ocirender/internal/registrytest"
)

// TestGrowing: a reader that follows a file while it is written gets every byte in order,
// then io.EOF once the writer finishes, or the writer's error.
func TestGrowing(t *testing.T) {
	data := make([]byte, 3<<20)
	rng := rand.New(rand.NewPCG(1, 1))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	for _, fail := range []bool{false, true} {
		path := filepath.Join(t.TempDir(), "blob")
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		g, err := newGrowing(path)
		if err != nil {
			t.Fatal(err)
		}
		broken := errors.New("connection reset")
		go func() {
			n := 0
			for n < len(data) {
				k := min(len(data)-n, 1+rng.IntN(100000))
				f.Write(data[n : n+k])
				n += k
				g.grew(int64(n))
				if fail && n > len(data)/2 {
					g.finish(broken)
					return
				}
			}
			g.finish(nil)
		}()
		got, err := io.ReadAll(g)
		if fail {
			if !errors.Is(err, broken) || !bytes.Equal(got, data[:len(got)]) {
				t.Errorf("failed download: %d bytes, %v", len(got), err)
			}
			continue
		}
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("read %d of %d bytes, %v", len(got), len(data), err)
		}
	}
}

// TestFetch: every layer arrives once, ready after its stream, a digest that appears twice
// is downloaded once, and a second Fetch downloads nothing.
func TestFetch(t *testing.T) {
	dir := t.TempDir()
	a := imagetest.GzipBlob(imagetest.Layer(imagetest.Reg("a", "alpha")))
	b := imagetest.ZstdBlob(imagetest.Layer(imagetest.Reg("b", "beta")))
	if _, err := imagetest.WriteLayout(dir, "x", a, b, a); err != nil {
		t.Fatal(err)
	}
	reg := registrytest.New(t, "", "")
	ref := reg.Push(t, dir, "x", "x:1")
	blobs := t.TempDir()
	r, err := Resolve(context.Background(), ref, Options{BlobDir: blobs, Jobs: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if len(r.Layers) != 3 {
		t.Fatalf("%d layers", len(r.Layers))
	}
	var mu sync.Mutex
	var order []int
	streamed := map[int][]byte{}
	var wg sync.WaitGroup
	before := reg.BlobGets.Load()
	err = r.Fetch(context.Background(), func(i int, path string) error {
		mu.Lock()
		order = append(order, i)
		mu.Unlock()
		if path != r.BlobPath(i) {
			t.Errorf("layer %d at %s", i, path)
		}
		return nil
	}, func(i int, blob io.Reader) error {
		wg.Add(1)
		go func() {
			defer wg.Done()
			data, err := io.ReadAll(blob)
			if err != nil {
				t.Errorf("stream of layer %d: %v", i, err)
			}
			mu.Lock()
			streamed[i] = data
			mu.Unlock()
		}()
		return nil
	})
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if len(order) != 3 || order[0] != 2 && order[0] != 1 {
		t.Errorf("ready order %v, want every layer, newest first", order)
	}
	if gets := reg.BlobGets.Load() - before; gets != 2 {
		t.Errorf("%d blob downloads, want 2 (layer 0 and 2 share a digest)", gets)
	}
	for i, want := range [][]byte{a.Data, b.Data, a.Data} {
		got, _ := os.ReadFile(r.BlobPath(i))
		if !bytes.Equal(got, want) {
			t.Errorf("layer %d: the blob file differs", i)
		}
		if s, ok := streamed[i]; ok && !bytes.Equal(s, want) {
			t.Errorf("layer %d: the stream differs", i)
		}
	}
	if len(streamed) != 2 {
		t.Errorf("%d layers streamed, want the 2 downloads", len(streamed))
	}
	before = reg.BlobGets.Load()
	if err := r.Fetch(context.Background(), func(int, string) error { return nil }, nil); err != nil {
		t.Fatal(err)
	}
	if gets := reg.BlobGets.Load() - before; gets != 0 {
		t.Errorf("second Fetch: %d downloads", gets)
	}
	// A blob spoiled in place is dropped, once for its digest, and only it.
	data, _ := os.ReadFile(r.BlobPath(0))
	data[0] ^= 1
	os.WriteFile(r.BlobPath(0), data, 0o600)
	if n, err := r.DropCorrupt(); n != 1 || err != nil {
		t.Errorf("DropCorrupt = %d, %v; want 1", n, err)
	}
	if r.Have(0) || r.Have(2) || !r.Have(1) {
		t.Errorf("after DropCorrupt: have %v %v %v", r.Have(0), r.Have(1), r.Have(2))
	}
}

// TestFetchSpoiled: a blob with a flipped byte, or one byte too many (with or without a
// Content-Length saying so), fails its layer's download with one line naming the layer, and
// never enters the blob directory.
func TestFetchSpoiled(t *testing.T) {
	dir := t.TempDir()
	a := imagetest.GzipBlob(imagetest.Layer(imagetest.Reg("a", "alpha")))
	if _, err := imagetest.WriteLayout(dir, "x", a); err != nil {
		t.Fatal(err)
	}
	reg := registrytest.New(t, "", "")
	ref := reg.Push(t, dir, "x", "x:1")
	for _, tc := range []struct {
		how  registrytest.Spoiling
		want string
	}{
		{registrytest.FlipByte, "digest mismatch"},
		// go-containerregistry's own check sees the extra byte first: the digest of 101 bytes.
		{registrytest.ExtraByte, "digest mismatch"},
		{registrytest.ExtraByteChunked, "digest mismatch"},
	} {
		blobs := t.TempDir()
		r, err := Resolve(context.Background(), ref, Options{BlobDir: blobs})
		if err != nil {
			t.Fatal(err)
		}
		reg.SpoilHow(r.Layers[0].Digest.Hex, tc.how)
		err = r.Fetch(context.Background(), func(int, string) error { return nil }, nil)
		reg.Spoil("")
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "layer 0") || strings.Contains(err.Error(), "\n") {
			t.Errorf("spoiling %d: %v, want one line saying %q", tc.how, err, tc.want)
		}
		if r.Have(0) {
			t.Errorf("spoiling %d: the blob is in the blob directory", tc.how)
		}
		left, _ := os.ReadDir(filepath.Join(blobs, "sha256"))
		if len(left) != 0 {
			t.Errorf("spoiling %d: left %d files", tc.how, len(left))
		}
	}
}

// TestParsePlatform: pull reads platforms as image does (the same normalised spellings, the
// same errors), but "" is linux whatever the host.
func TestParsePlatform(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "linux/" + runtime.GOARCH + "/"},
		{"linux/x86_64", "linux/amd64/"},
		{"linux/aarch64/v8", "linux/arm64/"},
		{"linux/arm", "linux/arm/v7"},
		{"Linux/ARM64", "linux/arm64/"},
	} {
		p, err := parsePlatform(tc.in)
		if got := p.OS + "/" + p.Architecture + "/" + p.Variant; err != nil || got != tc.want {
			t.Errorf("parsePlatform(%q) = %s, %v, want %s", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"linux", "linux/", "a/b/c/d", "linux/arm/"} {
		if _, err := parsePlatform(bad); err == nil {
			t.Errorf("parsePlatform(%q) = nil error, want one", bad)
		}
	}
}

// TestGrowingKeepsTheDownloadError: a reader of a failed download returns the download's
// error on every Read, also after the first one closed it (bufio.Reader reads again after
// an error: it saw "reader closed" and a digest mismatch was reported as that).
func TestGrowingKeepsTheDownloadError(t *testing.T) {
	f := filepath.Join(t.TempDir(), "blob")
	if err := os.WriteFile(f, []byte("abc"), 0o644); err != nil {
		t.Fatal(err)
	}
	g, err := newGrowing(f)
	if err != nil {
		t.Fatal(err)
	}
	g.grew(3)
	bad := errors.New("digest mismatch")
	g.finish(bad)
	buf := make([]byte, 8)
	for i := range 3 {
		if n, err := g.Read(buf); n != 0 || !errors.Is(err, bad) {
			t.Errorf("Read %d after a failed download = %d, %v; want 0, %v", i+1, n, err, bad)
		}
	}
}
