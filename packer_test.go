package ocirender_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ocirender/ocirender"
	"github.com/ocirender/ocirender/image"
	"github.com/ocirender/ocirender/internal/imagetest"
)

// fourLayers writes a 4-layer image (every compression, whiteouts, an opaque directory, a
// hard link across layers) as an OCI layout in dir, and returns its manifest and config and
// the path of each layer's blob.
func fourLayers(t *testing.T, dir string) (manifest, config []byte, blobs []string) {
	t.Helper()
	l0 := imagetest.Layer(imagetest.Dir("etc"), imagetest.Reg("etc/a", "alpha"), imagetest.Reg("etc/big", strings.Repeat("big ", 70000)),
		imagetest.Dir("opt/keep"), imagetest.Reg("opt/keep/old", "old"), imagetest.Sym("lib", "usr/lib"), imagetest.Dir("usr/lib"))
	l1 := imagetest.Layer(imagetest.Whiteout("etc/big"), imagetest.Reg("usr/lib/x", "x"), imagetest.Hard("etc/x2", "usr/lib/x"))
	l2 := imagetest.Layer(imagetest.Opaque("opt/keep"), imagetest.Reg("opt/keep/new", "new"), imagetest.Reg("etc/a", "second alpha"))
	l3 := imagetest.Layer(imagetest.Reg("etc/zero", ""), imagetest.Reg("etc/b", strings.Repeat("b", 300000)), imagetest.Whiteout("lib"))
	md, err := imagetest.WriteLayout(dir, "four", imagetest.GzipBlob(l0), imagetest.ZstdBlob(l1), imagetest.TarBlob(l2), imagetest.GzipBlob(l3))
	if err != nil {
		t.Fatal(err)
	}
	blob := func(d string) string { return filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(d, "sha256:")) }
	manifest, err = os.ReadFile(blob(md))
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Config struct{ Digest string }
		Layers []struct{ Digest string }
	}
	if err := json.Unmarshal(manifest, &m); err != nil {
		t.Fatal(err)
	}
	if config, err = os.ReadFile(blob(m.Config.Digest)); err != nil {
		t.Fatal(err)
	}
	for _, l := range m.Layers {
		blobs = append(blobs, blob(l.Digest))
	}
	return manifest, config, blobs
}

// permutations returns every order of 0..n-1.
func permutations(n int) [][]int {
	if n == 0 {
		return [][]int{{}}
	}
	var out [][]int
	for _, p := range permutations(n - 1) {
		for i := 0; i <= len(p); i++ {
			q := slices.Insert(slices.Clone(p), i, n-1)
			out = append(out, q)
		}
	}
	return out
}

func pack(t *testing.T, manifest, config []byte, blobs []string, order []int, spec ocirender.Spec) error {
	t.Helper()
	img, err := image.FromManifest("test/four", manifest, config, image.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := ocirender.NewPacker(context.Background(), img, spec)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range order {
		if err := p.LayerReady(i, blobs[i]); err != nil {
			t.Fatal(err)
		}
	}
	return p.Close()
}

// TestPackerAnyOrder: for every arrival order of the four layers, the Packer's squashfs and
// tar are byte-identical to what Convert makes of the same image read from its layout.
func TestPackerAnyOrder(t *testing.T) {
	layout := t.TempDir()
	manifest, config, blobs := fourLayers(t, layout)
	out := t.TempDir()
	want := map[string][]byte{}
	for _, f := range []string{ocirender.FormatSquashfs, ocirender.FormatTar} {
		p := filepath.Join(out, "want."+f)
		if err := ocirender.Convert(context.Background(), layout, ocirender.Spec{Format: f, Path: p, Open: ocirender.Options{TempDir: t.TempDir()}}); err != nil {
			t.Fatalf("Convert %s: %v", f, err)
		}
		want[f], _ = os.ReadFile(p)
	}
	if !bytes.Contains(want[ocirender.FormatTar], []byte("opt/keep/new")) || bytes.Contains(want[ocirender.FormatTar], []byte("opt/keep/old")) {
		t.Fatal("the reference tar does not look merged")
	}
	orders := permutations(4)
	if len(orders) != 24 {
		t.Fatalf("%d orders", len(orders))
	}
	for _, order := range orders {
		for _, f := range []string{ocirender.FormatSquashfs, ocirender.FormatTar} {
			p := filepath.Join(out, "got."+f)
			if err := pack(t, manifest, config, blobs, order, ocirender.Spec{Format: f, Path: p, Open: ocirender.Options{TempDir: t.TempDir()}}); err != nil {
				t.Fatalf("order %v, %s: %v", order, f, err)
			}
			got, _ := os.ReadFile(p)
			if !bytes.Equal(got, want[f]) {
				t.Fatalf("order %v: the %s differs from Convert's (%d vs %d bytes)", order, f, len(got), len(want[f]))
			}
			os.Remove(p)
		}
	}
	// Arrivals from concurrent goroutines, as downloads finish.
	for range 5 {
		img, _ := image.FromManifest("test/four", manifest, config, image.Options{})
		p := filepath.Join(out, "concurrent.sqfs")
		pk, err := ocirender.NewPacker(context.Background(), img, ocirender.Spec{Format: ocirender.FormatSquashfs, Path: p})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for i := range blobs {
			wg.Go(func() { pk.LayerReady(i, blobs[i]) })
		}
		wg.Wait()
		if err := pk.Close(); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(p); !bytes.Equal(got, want[ocirender.FormatSquashfs]) {
			t.Fatal("concurrent arrivals: the squashfs differs")
		}
	}
}

// entries lists the names in dir.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return names
}

// TestPackerFails: a failed download, a layer that never arrives and a blob of the wrong bytes
// all make Close fail with a clear error and leave no output, not even a temporary file.
func TestPackerFails(t *testing.T) {
	layout := t.TempDir()
	manifest, config, blobs := fourLayers(t, layout)
	bad := filepath.Join(t.TempDir(), "bad")
	b, _ := os.ReadFile(blobs[2])
	b[len(b)/2] ^= 1
	os.WriteFile(bad, b, 0o644)
	downloadErr := errors.New("GET layer 1: connection reset")
	for _, tc := range []struct {
		name string
		feed func(p *ocirender.Packer)
		want string
	}{
		{"download fails", func(p *ocirender.Packer) {
			p.LayerReady(3, blobs[3])
			p.LayerReady(0, blobs[0])
			p.Fail(downloadErr)
		}, "connection reset"},
		{"layer never arrives", func(p *ocirender.Packer) {
			p.LayerReady(3, blobs[3])
			p.LayerReady(1, blobs[1])
			p.LayerReady(0, blobs[0])
		}, "layer 2 (sha256:"},
		{"no layer at all", func(p *ocirender.Packer) {}, "never arrived"},
		{"bad bytes", func(p *ocirender.Packer) {
			for i := range blobs {
				path := blobs[i]
				if i == 2 {
					path = bad
				}
				p.LayerReady(i, path)
			}
		}, "digest"},
		{"missing file", func(p *ocirender.Packer) {
			for i := range blobs {
				path := blobs[i]
				if i == 1 {
					path = bad + ".gone"
				}
				p.LayerReady(i, path)
			}
		}, "missing"},
	} {
		for _, f := range []string{ocirender.FormatSquashfs, ocirender.FormatTar, ocirender.FormatDir} {
			out := t.TempDir()
			img, err := image.FromManifest("test/four", manifest, config, image.Options{})
			if err != nil {
				t.Fatal(err)
			}
			p, err := ocirender.NewPacker(context.Background(), img, ocirender.Spec{Format: f, Path: filepath.Join(out, "out")})
			if err != nil {
				t.Fatal(err)
			}
			tc.feed(p)
			err = p.Close()
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("%s, %s: Close = %v, want one line mentioning %q", tc.name, f, err, tc.want)
			}
			if tc.name == "download fails" && !errors.Is(err, downloadErr) {
				t.Errorf("%s: Close = %v, not the download's error", tc.name, err)
			}
			if left := entries(t, out); len(left) != 0 {
				t.Errorf("%s, %s: left %v behind", tc.name, f, left)
			}
		}
	}
}

func TestPackerMisuse(t *testing.T) {
	layout := t.TempDir()
	manifest, config, blobs := fourLayers(t, layout)
	img, _ := image.FromManifest("test/four", manifest, config, image.Options{})
	p, err := ocirender.NewPacker(context.Background(), img, ocirender.Spec{})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.LayerReady(4, blobs[0]); err == nil {
		t.Error("LayerReady(4) of a 4-layer image worked")
	}
	if err := p.LayerReady(1, blobs[1]); err != nil {
		t.Fatal(err)
	}
	if err := p.LayerReady(1, blobs[1]); err == nil {
		t.Error("LayerReady(1) twice worked")
	}
	for _, i := range []int{0, 2, 3} {
		p.LayerReady(i, blobs[i])
	}
	if p.Image() != nil {
		t.Error("Image before Close")
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.LayerReady(0, blobs[0]); err == nil {
		t.Error("LayerReady after Close worked")
	}
	// With no format the merged image stays open for reads.
	im := p.Image()
	if im == nil {
		t.Fatal("no Image after Close")
	}
	defer im.Close()
	want := tarListing(t, open(t, layout))
	if got := tarListing(t, im); got != want {
		t.Errorf("the Packer's image lists\n%s\nthe layout's\n%s", got, want)
	}
	if _, err := ocirender.NewPacker(context.Background(), img, ocirender.Spec{Format: "zip", Path: "x"}); err == nil {
		t.Error("format zip accepted")
	}
}

// TestPackerEvents: every layer reports its start, its bytes and its end, then the output its
// progress, then the Packer its end.
func TestPackerEvents(t *testing.T) {
	layout := t.TempDir()
	manifest, config, blobs := fourLayers(t, layout)
	var mu sync.Mutex
	var seen []ocirender.Event
	spec := ocirender.Spec{Format: ocirender.FormatTar, Path: filepath.Join(t.TempDir(), "out.tar"),
		Open: ocirender.Options{Events: func(e ocirender.Event) {
			mu.Lock()
			seen = append(seen, e)
			mu.Unlock()
		}}}
	if err := pack(t, manifest, config, blobs, []int{2, 0, 3, 1}, spec); err != nil {
		t.Fatal(err)
	}
	started, scanned := map[int]bool{}, map[int]int64{}
	var wrote, finished bool
	for _, e := range seen {
		switch e.Kind {
		case ocirender.LayerStarted:
			started[e.Layer] = true
		case ocirender.LayerScanned:
			if e.Err != nil || e.Done != e.Total {
				t.Errorf("layer %d scanned: %+v", e.Layer, e)
			}
			scanned[e.Layer] = e.Done
		case ocirender.Writing:
			wrote = e.Done == e.Total && e.Total > 0 || wrote
		case ocirender.Finished:
			finished = true
		}
	}
	if len(started) != 4 || len(scanned) != 4 || !wrote || !finished || seen[len(seen)-1].Kind != ocirender.Finished {
		t.Errorf("events: started %v scanned %v wrote %v finished %v", started, scanned, wrote, finished)
	}
}

// feed streams the file at path into a pipe in small chunks, as a download would, then calls
// done; it returns the pipe's reader.
func feed(t *testing.T, path string, spoil bool, done func()) io.Reader {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if spoil {
		data = slices.Clone(data)
		data[len(data)/2] ^= 1
	}
	pr, pw := io.Pipe()
	go func() {
		for len(data) > 0 {
			n := min(len(data), 4096)
			if _, err := pw.Write(data[:n]); err != nil {
				return
			}
			data = data[n:]
		}
		pw.Close()
		done()
	}()
	return pr
}

// TestPackerArriving: layers scanned while they arrive (LayerArriving, then LayerReady) give
// the same bytes as layers handed over whole, in any mix and order; a spoiled stream, a
// stream that breaks and a stream never made ready all fail Close and leave nothing.
func TestPackerArriving(t *testing.T) {
	layout := t.TempDir()
	manifest, config, blobs := fourLayers(t, layout)
	out := t.TempDir()
	want := filepath.Join(out, "want.sqfs")
	if err := ocirender.Convert(context.Background(), layout, ocirender.Spec{Format: ocirender.FormatSquashfs, Path: want}); err != nil {
		t.Fatal(err)
	}
	wantBytes, _ := os.ReadFile(want)
	for k, order := range permutations(4) {
		img, _ := image.FromManifest("test/four", manifest, config, image.Options{})
		got := filepath.Join(out, "got.sqfs")
		// Keep the layers in uncompressed form when the cache is on: both ways of reading
		// uncompressed layer 2 (spooled, in place) are exercised.
		spec := ocirender.Spec{Format: ocirender.FormatSquashfs, Path: got}
		if k%2 == 1 {
			spec.Open.CacheDir = t.TempDir()
		}
		p, err := ocirender.NewPacker(context.Background(), img, spec)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for n, i := range order {
			if n%2 == 1 && k%3 != 0 { // every other layer whole, except in a third of the runs
				p.LayerReady(i, blobs[i])
				continue
			}
			wg.Add(1)
			r := feed(t, blobs[i], false, func() {
				defer wg.Done()
				if err := p.LayerReady(i, blobs[i]); err != nil {
					t.Errorf("LayerReady(%d): %v", i, err)
				}
			})
			if err := p.LayerArriving(i, r); err != nil {
				t.Fatal(err)
			}
		}
		wg.Wait()
		if err := p.Close(); err != nil {
			t.Fatalf("order %v: %v", order, err)
		}
		if b, _ := os.ReadFile(got); !bytes.Equal(b, wantBytes) {
			t.Fatalf("order %v: the squashfs differs", order)
		}
		os.Remove(got)
	}

	for _, tc := range []struct {
		name string
		run  func(p *ocirender.Packer)
		want string
	}{
		{"spoiled stream", func(p *ocirender.Packer) {
			for i := range blobs {
				if i != 1 {
					p.LayerReady(i, blobs[i])
				}
			}
			done := make(chan struct{})
			p.LayerArriving(1, feed(t, blobs[1], true, func() { close(done) }))
			<-done
			p.LayerReady(1, blobs[1])
		}, "digest"},
		{"broken stream", func(p *ocirender.Packer) {
			pr, pw := io.Pipe()
			p.LayerArriving(0, pr)
			pw.Write([]byte{0x1f, 0x8b})
			pw.CloseWithError(errors.New("connection reset by peer"))
			p.Fail(errors.New("download of layer 0 failed"))
		}, "download of layer 0 failed"},
		{"never ready", func(p *ocirender.Packer) {
			for i := range blobs {
				if i != 3 {
					p.LayerReady(i, blobs[i])
				}
			}
			done := make(chan struct{})
			p.LayerArriving(3, feed(t, blobs[3], false, func() { close(done) }))
			<-done
		}, "layer 3"},
	} {
		dir := t.TempDir()
		img, _ := image.FromManifest("test/four", manifest, config, image.Options{})
		p, err := ocirender.NewPacker(context.Background(), img, ocirender.Spec{Format: ocirender.FormatTar, Path: filepath.Join(dir, "out.tar")})
		if err != nil {
			t.Fatal(err)
		}
		tc.run(p)
		err = p.Close()
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: Close = %v, want one line mentioning %q", tc.name, err, tc.want)
		}
		if left := entries(t, dir); len(left) != 0 {
			t.Errorf("%s: left %v", tc.name, left)
		}
	}
}
