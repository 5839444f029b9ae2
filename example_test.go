package ocirender_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/ocirender/ocirender"
	"github.com/ocirender/ocirender/image"
	"github.com/ocirender/ocirender/index"
	"github.com/ocirender/ocirender/internal/imagetest"
)

// exampleLayout writes a small two-layer OCI layout to a temporary directory.
func exampleLayout() (string, func()) {
	dir, err := os.MkdirTemp("", "example-")
	if err != nil {
		panic(err)
	}
	l0 := imagetest.Layer(imagetest.Dir("etc"), imagetest.Reg("etc/motd", "hello\n"), imagetest.Reg("etc/old", "x"))
	l1 := imagetest.Layer(imagetest.Whiteout("etc/old"), imagetest.Reg("etc/new", "world\n"))
	if _, err := imagetest.WriteLayout(dir, "v1", imagetest.GzipBlob(l0), imagetest.ZstdBlob(l1)); err != nil {
		panic(err)
	}
	return dir, func() { os.RemoveAll(dir) }
}

// Convert an image layout into a squashfs image in one call.
func ExampleConvert() {
	layout, cleanup := exampleLayout()
	defer cleanup()
	out := filepath.Join(layout, "rootfs.sqfs")
	err := ocirender.Convert(context.Background(), layout, ocirender.Spec{
		Format: ocirender.FormatSquashfs,
		Path:   out,
		Open:   ocirender.Options{Ref: "v1"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fi, _ := os.Stat(out)
	fmt.Println("squashfs written:", fi.Size()%4096 == 0)
	// Output: squashfs written: true
}

// Open an image to look at its merged tree and read a file, without extracting anything.
func ExampleOpen() {
	layout, cleanup := exampleLayout()
	defer cleanup()
	img, err := ocirender.Open(context.Background(), layout, ocirender.Options{Content: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer img.Close()
	for _, name := range []string{"etc/motd", "etc/new", "etc/old"} {
		f, _, err := img.OpenFile(name, false)
		if errors.Is(err, index.ErrNotExist) {
			fmt.Println(name, "is not in the merged tree")
			continue
		}
		data, _ := io.ReadAll(f)
		fmt.Printf("%s: %q\n", name, data)
	}
	// Output:
	// etc/motd: "hello\n"
	// etc/new: "world\n"
	// etc/old is not in the merged tree
}

// Feed a Packer the layers of an image as their downloads complete, in whatever order that
// is; it scans each on arrival and writes the tar as soon as the last one is in.
func ExamplePacker() {
	layout, cleanup := exampleLayout()
	defer cleanup()
	// Stand-ins for what a registry client has fetched: the manifest, the config, and the
	// layer blobs as files.
	manifest, config, blobs := layoutDocuments(layout)
	img, err := image.FromManifest("registry.example/app:v1", manifest, config, image.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	out := filepath.Join(layout, "rootfs.tar")
	var scanned atomic.Int32
	p, err := ocirender.NewPacker(context.Background(), img, ocirender.Spec{
		Format: ocirender.FormatTar,
		Path:   out,
		Open: ocirender.Options{Events: func(e ocirender.Event) {
			if e.Kind == ocirender.LayerScanned {
				scanned.Add(1) // events come from the scanning goroutines
			}
		}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	p.LayerReady(1, blobs[1]) // the small top layer arrives first
	p.LayerReady(0, blobs[0])
	if err := p.Close(); err != nil {
		fmt.Println(err)
		return
	}
	tarball, _ := os.ReadFile(out)
	fmt.Println("layers scanned:", scanned.Load())
	fmt.Println("has etc/new:", strings.Contains(string(tarball), "etc/new"))
	// Output:
	// layers scanned: 2
	// has etc/new: true
}

// layoutDocuments reads the manifest, the config and the layer blob paths of a one-image
// layout written by imagetest.WriteLayout.
func layoutDocuments(dir string) (manifest, config []byte, blobs []string) {
	blob := func(d string) string { return filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(d, "sha256:")) }
	var idx struct{ Manifests []struct{ Digest string } }
	raw, _ := os.ReadFile(filepath.Join(dir, "index.json"))
	json.Unmarshal(raw, &idx)
	manifest, _ = os.ReadFile(blob(idx.Manifests[0].Digest))
	var m struct {
		Config struct{ Digest string }
		Layers []struct{ Digest string }
	}
	json.Unmarshal(manifest, &m)
	config, _ = os.ReadFile(blob(m.Config.Digest))
	for _, l := range m.Layers {
		blobs = append(blobs, blob(l.Digest))
	}
	return manifest, config, blobs
}
