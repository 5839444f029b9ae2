package image

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

// exercise opens path every way a caller would and reads everything it
// offers. It fails the test on a panic (implicitly) or on an error that is
// not one line starting with "image: ".
func exercise(t *testing.T, path string) {
	checkText := func(err error) {
		if err == nil || err == io.EOF {
			return
		}
		if s := err.Error(); !strings.HasPrefix(s, "image: ") || strings.Contains(s, "\n") {
			t.Fatalf("error %q: want one line starting with image:", s)
		}
	}
	_, err := List(path)
	checkText(err)
	for _, opts := range []Options{{}, {Ref: "latest"}, {Platform: "linux/arm64"}} {
		im, err := Open(path, opts)
		checkText(err)
		if err != nil {
			continue
		}
		for i := range im.Layers {
			if b, err := im.LayerBlob(i); err == nil {
				_, err = b.ReadAt(make([]byte, 16), b.Size/2)
				if err != io.EOF {
					checkText(err)
				}
			}
			r, err := im.OpenLayer(i)
			checkText(err)
			if err == nil {
				_, err = io.Copy(io.Discard, r)
				checkText(err)
				r.Close()
			}
		}
		if err := im.Close(); err != nil {
			t.Fatalf("Close = %v", err)
		}
	}
}

// FuzzOpenArchive feeds arbitrary bytes to Open as a tar archive.
func FuzzOpenArchive(f *testing.F) {
	seeds := []func(testing.TB) *layoutBuilder{
		func(t testing.TB) *layoutBuilder { b, _ := simple(t); return b },
		func(t testing.TB) *layoutBuilder { b, _, _ := twoImages(t); return b },
		multiPlatform,
		docker25,
		func(t testing.TB) *layoutBuilder {
			b := newLayout(t)
			b.legacy([]string{"x:latest"}, layerTar(t, "a"))
			return b.manifestJSON()
		},
	}
	for _, s := range seeds {
		f.Add(s(f).tarBytes())
	}
	p := filepath.Join(f.TempDir(), "fuzz.tar")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		exercise(t, p)
	})
}

// Templates for FuzzOpenLayout: the documents of a small layout.
const (
	seedConfig   = `{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["@L@"]}}`
	seedManifest = `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"@C@","size":@CS@},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"@L@","size":@LS@}]}`
	seedIndex    = `{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"@M@","size":@MS@,"annotations":{"org.opencontainers.image.ref.name":"latest"}}]}`
	seedNested   = `{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"@M@","size":@MS@}]}`
	seedDocker   = `[{"Config":"blobs/sha256/@CH@","RepoTags":["x:latest"],"Layers":["blobs/sha256/@LH@"]}]`
	seedLegacy   = `[{"Config":"@CH@.json","RepoTags":["x:latest"],"Layers":["l/layer.tar"]}]`
)

// writeFuzzLayout writes a layout directory from document templates, in
// which @C@, @CS@, @CH@ (config digest, size, hex), @M@, @MS@ (manifest) and
// @L@, @LS@, @LH@ (a fixed layer) stand for the real values, so that a
// fuzzer can reach past the digest checks. An empty index or docker
// document is not written.
func writeFuzzLayout(t testing.TB, dir string, indexJSON, manifestJSON, configJSON, dockerJSON []byte) {
	sub := func(doc []byte, pairs ...string) []byte {
		return []byte(strings.NewReplacer(pairs...).Replace(string(doc)))
	}
	layer := layerTar(t, "a")
	ld := digest.FromBytes(layer)
	lpairs := []string{"@LS@", fmt.Sprint(len(layer)), "@LH@", ld.Encoded(), "@L@", string(ld)}
	cfg := sub(configJSON, lpairs...)
	cd := digest.FromBytes(cfg)
	cpairs := append([]string{"@CS@", fmt.Sprint(len(cfg)), "@CH@", cd.Encoded(), "@C@", string(cd)}, lpairs...)
	man := sub(manifestJSON, cpairs...)
	md := digest.FromBytes(man)
	mpairs := append([]string{"@MS@", fmt.Sprint(len(man)), "@M@", string(md)}, cpairs...)
	write := func(name string, data []byte) {
		p := filepath.Join(dir, filepath.FromSlash(name))
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		must(t, os.WriteFile(p, data, 0o644))
	}
	write(blobName(ld), layer)
	write("l/layer.tar", layer)
	write(blobName(cd), cfg)
	write(cd.Encoded()+".json", cfg)
	write(blobName(md), man)
	if len(indexJSON) > 0 {
		write("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`))
		write("index.json", sub(indexJSON, mpairs...))
	}
	if len(dockerJSON) > 0 {
		write("manifest.json", sub(dockerJSON, mpairs...))
	}
}

// fuzzLayoutSeeds are the well-formed seeds of FuzzOpenLayout: each opens.
var fuzzLayoutSeeds = [][4]string{
	{seedIndex, seedManifest, seedConfig, ""},
	{seedIndex, seedManifest, seedConfig, seedDocker},
	{"", seedManifest, seedConfig, seedDocker},
	{"", "", seedConfig, seedLegacy},
}

// FuzzOpenLayout feeds arbitrary JSON documents to Open as a layout
// directory (see writeFuzzLayout).
func FuzzOpenLayout(f *testing.F) {
	for _, s := range fuzzLayoutSeeds {
		f.Add([]byte(s[0]), []byte(s[1]), []byte(s[2]), []byte(s[3]))
	}
	// An index whose manifest is itself (nested past the depth bound), and
	// a digest that is a path.
	f.Add([]byte(seedNested), []byte(seedNested), []byte(seedConfig), []byte(""))
	f.Add([]byte(`{"manifests":[{"digest":"sha256:../../x","size":1}]}`), []byte("{}"), []byte("{}"), []byte(""))
	base := f.TempDir()
	f.Fuzz(func(t *testing.T, indexJSON, manifestJSON, configJSON, dockerJSON []byte) {
		dir := filepath.Join(base, "layout")
		must(t, os.RemoveAll(dir))
		writeFuzzLayout(t, dir, indexJSON, manifestJSON, configJSON, dockerJSON)
		exercise(t, dir)
	})
}

// TestFuzzLayoutSeeds makes sure the seeds reach deep: the well-formed ones
// open and verify.
func TestFuzzLayoutSeeds(t *testing.T) {
	for i, s := range fuzzLayoutSeeds {
		dir := t.TempDir()
		writeFuzzLayout(t, dir, []byte(s[0]), []byte(s[1]), []byte(s[2]), []byte(s[3]))
		im, err := Open(dir, Options{Ref: "latest"})
		if err != nil {
			t.Errorf("seed %d: Open = %v", i, err)
			continue
		}
		if _, err := readLayers(im); err != nil || len(im.Layers) != 1 {
			t.Errorf("seed %d: %d layers, %v, want 1 that verifies", i, len(im.Layers), err)
		}
		im.Close()
	}
}
