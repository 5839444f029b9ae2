package image

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// openCase is one layout, opened with opts, as a directory and/or an archive.
type openCase struct {
	name  string
	build func(t testing.TB) *layoutBuilder
	forms string // "dir", "tar", "dot-tar" (tar -C DIR -c .) or "" for all
	opts  Options

	wantErr error  // from Open
	wantMsg string // substring of the error; PATH stands for the image path

	wantRef    string
	wantLayers []string // contents of each layer, compared after gunzip-free read
	layerErr   error    // from reading the layers, when Open succeeds
	check      func(t *testing.T, path string, im *Image)
}

func (c openCase) run(t *testing.T) {
	forms := []string{"dir", "tar", "dot-tar"}
	if c.forms != "" {
		forms = []string{c.forms}
	}
	for _, form := range forms {
		t.Run(form, func(t *testing.T) {
			b := c.build(t)
			path := b.dir()
			switch form {
			case "tar":
				path = b.tar()
			case "dot-tar":
				path = b.dotTar()
			}
			im, err := Open(path, c.opts)
			if c.wantErr != nil {
				if err == nil {
					im.Close()
					t.Fatalf("Open(%s, %+v) = ok, want error %v", path, c.opts, c.wantErr)
				}
				checkErr(t, path, err, c.wantErr, c.wantMsg)
				return
			}
			if err != nil {
				t.Fatalf("Open(%s, %+v) = %v, want ok", path, c.opts, err)
			}
			defer im.Close()
			if im.Ref != c.wantRef {
				t.Errorf("Open(%s).Ref = %q, want %q", path, im.Ref, c.wantRef)
			}
			if _, err := parseDigest(im.ID); err != nil || !strings.HasPrefix(im.ID, "sha256:") {
				t.Errorf("Open(%s).ID = %q, want sha256:<64hex>", path, im.ID)
			}
			got, err := readLayers(im)
			if c.layerErr != nil {
				if err == nil {
					t.Fatalf("reading layers of %s = ok, want %v", path, c.layerErr)
				}
				checkErr(t, path, err, c.layerErr, c.wantMsg)
				return
			}
			if err != nil {
				t.Fatalf("reading layers of %s: %v", path, err)
			}
			if c.wantLayers != nil {
				var contents []string
				for _, l := range got {
					contents = append(contents, layerNames(t, l))
				}
				if strings.Join(contents, "|") != strings.Join(c.wantLayers, "|") {
					t.Errorf("layers of %s = %q, want %q", path, contents, c.wantLayers)
				}
			}
			if c.check != nil {
				c.check(t, path, im)
			}
		})
	}
}

// checkErr checks an error's sentinel, its text, and that it is one line
// naming the image.
func checkErr(t *testing.T, path string, err, want error, msg string) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("error = %v, want %v", err, want)
	}
	s := err.Error()
	if strings.Contains(s, "\n") {
		t.Errorf("error %q is not one line", s)
	}
	if !strings.HasPrefix(s, "image: "+path) {
		t.Errorf("error %q does not start with image: %s", s, path)
	}
	if msg = strings.ReplaceAll(msg, "PATH", path); !strings.Contains(s, msg) {
		t.Errorf("error = %q, want it to contain %q", s, msg)
	}
}

// readLayers streams every layer through OpenLayer.
func readLayers(im *Image) ([][]byte, error) {
	var out [][]byte
	for i := range im.Layers {
		r, err := im.OpenLayer(i)
		if err != nil {
			return nil, err
		}
		data, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			return nil, err
		}
		out = append(out, data)
	}
	return out, nil
}

// layerNames lists the file names in a layer made by layerTar (gzipped or
// not), joined by ",".
func layerNames(t *testing.T, layer []byte) string {
	t.Helper()
	var names []string
	data := layer
	if isGzip(layer) {
		var err error
		data, err = gunzip(layer)
		if err != nil {
			t.Fatal(err)
		}
	}
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("layer is not a tar: %v", err)
		}
		names = append(names, hdr.Name)
	}
	return strings.Join(names, ",")
}

// TestOpen opens well-formed layouts of every kind.
func TestOpen(t *testing.T) {
	cases := []openCase{
		{
			name:       "oci",
			build:      func(t testing.TB) *layoutBuilder { b, _ := simple(t); return b },
			wantRef:    "v1",
			wantLayers: []string{"a", "b"},
			check: func(t *testing.T, path string, im *Image) {
				if im.Path != path {
					t.Errorf("Path = %q, want %q", im.Path, path)
				}
				if im.Config.OS != "linux" || im.Config.Architecture != "amd64" {
					t.Errorf("Config platform = %s/%s, want linux/amd64", im.Config.OS, im.Config.Architecture)
				}
				for i, l := range im.Layers {
					if l.Digest == "" || l.DiffID == "" || l.Size <= 0 || l.MediaType == "" {
						t.Errorf("Layers[%d] = %+v, want all fields set", i, l)
					}
				}
				if im.Layers[0].Digest != im.Layers[0].DiffID || im.Layers[1].Digest == im.Layers[1].DiffID {
					t.Errorf("Layers = %+v: want digest == diff_id only for the uncompressed one", im.Layers)
				}
			},
		},
		{
			name: "oci id is the manifest digest",
			build: func(t testing.TB) *layoutBuilder {
				b, m := simple(t)
				b.file("want-id", []byte(m.Digest))
				return b
			},
			forms:   "dir",
			wantRef: "v1",
			check: func(t *testing.T, path string, im *Image) {
				want, _ := os.ReadFile(filepath.Join(path, "want-id"))
				if im.ID != string(want) {
					t.Errorf("ID = %s, want %s", im.ID, want)
				}
			},
		},
		{
			name: "docker media types",
			build: func(t testing.TB) *layoutBuilder {
				b := newLayout(t)
				m, _ := b.image(imageSpec{docker: true, layers: [][]byte{gzipped(t, layerTar(t, "x"))}})
				b.top(m, "")
				return b.oci()
			},
			wantLayers: []string{"x"},
		},
		{
			name: "docker save legacy",
			build: func(t testing.TB) *layoutBuilder {
				b := newLayout(t)
				b.legacy([]string{"busybox:latest"}, layerTar(t, "a"), gzipped(t, layerTar(t, "b")))
				return b.manifestJSON()
			},
			wantRef:    "busybox:latest",
			wantLayers: []string{"a", "b"},
			check: func(t *testing.T, path string, im *Image) {
				l := im.Layers
				if l[0].Digest != l[0].DiffID || l[0].MediaType != "" {
					t.Errorf("uncompressed legacy layer = %+v, want Digest = DiffID, no media type", l[0])
				}
				if l[1].Digest != "" || l[1].DiffID == "" {
					t.Errorf("gzip legacy layer = %+v, want no Digest, a DiffID", l[1])
				}
			},
		},
		{
			name: "docker save legacy layer shared by symlink",
			build: func(t testing.TB) *layoutBuilder {
				b := newLayout(t)
				e := b.legacy([]string{"first:1"}, layerTar(t, "shared"))
				e.RepoTags = []string{"second:1"}
				e.Layers = []string{"dup/layer.tar"}
				b.symlinks["dup/layer.tar"] = "../" + strings.TrimSuffix(b.docker[0].Layers[0], "/layer.tar") + "/layer.tar"
				b.docker = append(b.docker, e)
				return b.manifestJSON()
			},
			opts:       Options{Ref: "second:1"},
			wantRef:    "second:1",
			wantLayers: []string{"shared"},
		},
		{
			name:       "docker 25 by RepoTag",
			build:      docker25,
			opts:       Options{Ref: "alpine:3"},
			wantRef:    "alpine:3",
			wantLayers: []string{"alpine", "alpine2"},
		},
		{
			name:       "docker 25 by name meaning latest",
			build:      docker25,
			opts:       Options{Ref: "busybox"},
			wantRef:    "busybox:latest",
			wantLayers: []string{"busybox"},
		},
		{
			name:       "docker 25 by bare tag",
			build:      docker25,
			opts:       Options{Ref: "3"},
			wantRef:    "alpine:3",
			wantLayers: []string{"alpine", "alpine2"},
		},
		{
			name:       "docker 25 by containerd name",
			build:      docker25,
			opts:       Options{Ref: "docker.io/library/busybox:latest"},
			wantRef:    "docker.io/library/busybox:latest",
			wantLayers: []string{"busybox"},
		},
		{
			name:       "docker 25 by ref.name annotation",
			build:      docker25,
			opts:       Options{Ref: "latest"},
			wantRef:    "latest",
			wantLayers: []string{"busybox"},
		},
		{
			name:       "platform amd64 from nested index",
			build:      multiPlatform,
			opts:       Options{Platform: "linux/amd64"},
			wantRef:    "multi",
			wantLayers: []string{"amd64"},
		},
		{
			name:       "platform arm64/v8 from nested index",
			build:      multiPlatform,
			opts:       Options{Platform: "linux/arm64/v8"},
			wantRef:    "multi",
			wantLayers: []string{"arm64"},
			check: func(t *testing.T, path string, im *Image) {
				if im.Config.Architecture != "arm64" {
					t.Errorf("Config.Architecture = %q, want arm64", im.Config.Architecture)
				}
			},
		},
		{
			name:       "platform arm64 means v8",
			build:      multiPlatform,
			opts:       Options{Platform: "linux/arm64", Ref: "multi"},
			wantRef:    "multi",
			wantLayers: []string{"arm64"},
		},
		{
			name: "host platform takes a single foreign image",
			build: func(t testing.TB) *layoutBuilder {
				b := newLayout(t)
				m, _ := b.image(imageSpec{platform: "linux/riscv64", layers: [][]byte{layerTar(t, "a")}})
				m.Platform = nil
				b.top(m, "")
				return b.oci()
			},
			wantLayers: []string{"a"},
		},
		{
			name:       "ref by annotation",
			build:      func(t testing.TB) *layoutBuilder { b, _, _ := twoImages(t); return b },
			opts:       Options{Ref: "b"},
			wantRef:    "b",
			wantLayers: []string{"b"},
		},
		{
			name: "one image under two refs",
			build: func(t testing.TB) *layoutBuilder {
				b := newLayout(t)
				m, _ := b.image(imageSpec{layers: [][]byte{layerTar(t, "a")}})
				b.top(m, "v1")
				b.top(m, "latest")
				return b.oci()
			},
			wantRef:    "v1",
			wantLayers: []string{"a"},
		},
		{
			name: "attestations are not images",
			build: func(t testing.TB) *layoutBuilder {
				b := newLayout(t)
				m, _ := b.image(imageSpec{layers: [][]byte{layerTar(t, "a")}})
				att, _ := b.image(imageSpec{layers: [][]byte{layerTar(t, "att")}})
				att.Platform = &v1.Platform{OS: "unknown", Architecture: "unknown"}
				b.top(m, "")
				b.top(att, "")
				return b.oci()
			},
			wantLayers: []string{"a"},
		},
		{
			name: "indexes nested to the limit",
			build: func(t testing.TB) *layoutBuilder {
				b := newLayout(t)
				d, _ := b.image(imageSpec{layers: [][]byte{layerTar(t, "a")}})
				for range maxIndexDepth {
					d = b.indexBlob(false, d)
				}
				b.top(d, "")
				return b.oci()
			},
			wantLayers: []string{"a"},
		},
		{
			name: "embedded manifest data",
			build: func(t testing.TB) *layoutBuilder {
				b, m := simple(t)
				m.Data = b.files[blobName(m.Digest)]
				delete(b.files, blobName(m.Digest))
				b.index = []v1.Descriptor{m}
				return b.oci()
			},
			wantLayers: []string{"a", "b"},
		},
		{
			name: "index.json without oci-layout next to manifest.json",
			build: func(t testing.TB) *layoutBuilder {
				b := newLayout(t)
				b.legacy([]string{"x:1"}, layerTar(t, "a"))
				b.manifestJSON()
				b.file("index.json", []byte("junk nobody vouched for"))
				return b
			},
			wantRef:    "x:1",
			wantLayers: []string{"a"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, c.run)
	}
}
