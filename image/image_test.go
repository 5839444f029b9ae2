package image

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// openCase is one layout, opened with opts, as a directory and/or an archive.
type openCase struct {
	name  string
	build func(t *testing.T) *layoutBuilder
	forms string // "dir", "tar" or "" for both
	opts  Options

	wantErr error  // from Open
	wantMsg string // substring of the error; PATH stands for the image path

	wantRef    string
	wantLayers []string // contents of each layer, compared after gunzip-free read
	layerErr   error    // from reading the layers, when Open succeeds
	check      func(t *testing.T, path string, im *Image)
}

func (c openCase) run(t *testing.T) {
	forms := []string{"dir", "tar"}
	if c.forms != "" {
		forms = []string{c.forms}
	}
	for _, form := range forms {
		t.Run(form, func(t *testing.T) {
			b := c.build(t)
			path := b.dir()
			if form == "tar" {
				path = b.tar()
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

// simple is a layout with one OCI image of two layers, named "v1".
func simple(t *testing.T) (*layoutBuilder, v1.Descriptor) {
	b := newLayout(t)
	m, _ := b.image(imageSpec{layers: [][]byte{layerTar(t, "a"), gzipped(t, layerTar(t, "b"))}})
	b.top(m, "v1")
	b.oci()
	return b, m
}

// twoImages is a layout with OCI images "a" and "b".
func twoImages(t *testing.T) (*layoutBuilder, v1.Descriptor, v1.Descriptor) {
	b := newLayout(t)
	ma, _ := b.image(imageSpec{layers: [][]byte{layerTar(t, "a")}})
	mb, _ := b.image(imageSpec{layers: [][]byte{layerTar(t, "b")}})
	b.top(ma, "a")
	b.top(mb, "b")
	b.oci()
	return b, ma, mb
}

// multiPlatform is an outer docker manifest list holding an OCI index of an
// amd64 image, an arm64/v8 image and an attestation, named "multi".
func multiPlatform(t *testing.T) *layoutBuilder {
	b := newLayout(t)
	mA, _ := b.image(imageSpec{platform: "linux/amd64", layers: [][]byte{layerTar(t, "amd64")}})
	mB, _ := b.image(imageSpec{platform: "linux/arm64/v8", layers: [][]byte{gzipped(t, layerTar(t, "arm64"))}})
	att, _ := b.image(imageSpec{layers: [][]byte{layerTar(t, "sbom")}})
	att.Platform = &v1.Platform{OS: "unknown", Architecture: "unknown"}
	att.Annotations = map[string]string{"vnd.docker.reference.type": "attestation-manifest"}
	inner := b.indexBlob(false, att, mA, mB)
	outer := b.indexBlob(true, inner)
	b.top(outer, "multi")
	b.oci()
	return b
}

// docker25 is what docker 25+ saves: index.json with containerd and ref
// annotations, and a manifest.json naming blobs. It holds busybox:latest
// (annotated in the index) and alpine:3 (named only by manifest.json).
func docker25(t *testing.T) *layoutBuilder {
	b := newLayout(t)
	add := func(tag string, annotate bool, layers ...[]byte) {
		m, cfg := b.image(imageSpec{layers: layers})
		m.Platform = nil
		if annotate {
			m.Annotations = map[string]string{
				annotationContainerdName: "docker.io/library/" + tag,
				v1.AnnotationRefName:     tag[strings.LastIndexByte(tag, ':')+1:],
			}
		}
		b.index = append(b.index, m)
		e := dockerEntry{Config: blobName(cfg.Digest), RepoTags: []string{tag}}
		var man v1.Manifest
		must(t, json.Unmarshal(b.files[blobName(m.Digest)], &man))
		for _, l := range man.Layers {
			e.Layers = append(e.Layers, blobName(l.Digest))
		}
		b.docker = append(b.docker, e)
	}
	add("busybox:latest", true, layerTar(t, "busybox"))
	add("alpine:3", false, layerTar(t, "alpine"), layerTar(t, "alpine2"))
	b.oci().manifestJSON()
	b.file("repositories", []byte(`{}`))
	return b
}

func TestOpen(t *testing.T) {
	cases := []openCase{
		{
			name:       "oci",
			build:      func(t *testing.T) *layoutBuilder { b, _ := simple(t); return b },
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
			build: func(t *testing.T) *layoutBuilder {
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
			build: func(t *testing.T) *layoutBuilder {
				b := newLayout(t)
				m, _ := b.image(imageSpec{docker: true, layers: [][]byte{gzipped(t, layerTar(t, "x"))}})
				b.top(m, "")
				return b.oci()
			},
			wantLayers: []string{"x"},
		},
		{
			name: "docker save legacy",
			build: func(t *testing.T) *layoutBuilder {
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
			build: func(t *testing.T) *layoutBuilder {
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
			name: "docker save legacy tampered layer",
			build: func(t *testing.T) *layoutBuilder {
				b := newLayout(t)
				e := b.legacy([]string{"x:1"}, layerTar(t, "a"))
				b.files[e.Layers[0]] = layerTar(t, "b") // same size, other content
				return b.manifestJSON()
			},
			wantRef:  "x:1",
			layerErr: ErrDigest,
			wantMsg:  "PATH: layer 0 (",
		},
		{
			name: "docker save legacy tampered config",
			build: func(t *testing.T) *layoutBuilder {
				b := newLayout(t)
				e := b.legacy([]string{"x:1"}, layerTar(t, "a"))
				b.files[e.Config] = append(b.files[e.Config], ' ')
				return b.manifestJSON()
			},
			wantErr: ErrDigest,
			wantMsg: "digest mismatch",
		},
		{
			name: "docker save legacy missing layer",
			build: func(t *testing.T) *layoutBuilder {
				b := newLayout(t)
				e := b.legacy([]string{"x:1"}, layerTar(t, "a"))
				delete(b.files, e.Layers[0])
				return b.manifestJSON()
			},
			wantErr: ErrNotFound,
			wantMsg: "layer 0: ",
		},
		{
			name: "docker save layer path escapes",
			build: func(t *testing.T) *layoutBuilder {
				b := newLayout(t)
				b.legacy([]string{"x:1"}, layerTar(t, "a"))
				b.docker[0].Layers[0] = "../../etc/passwd"
				return b.manifestJSON()
			},
			wantErr: ErrInvalid,
			wantMsg: "escapes",
		},
		{
			name:    "docker save empty",
			build:   func(t *testing.T) *layoutBuilder { b := newLayout(t); b.file(dockerManifestFile, []byte("[]")); return b },
			wantErr: ErrNotFound,
			wantMsg: "manifest.json lists no images",
		},
		{
			name:    "docker save junk manifest.json",
			build:   func(t *testing.T) *layoutBuilder { b := newLayout(t); b.file(dockerManifestFile, []byte("{junk")); return b },
			wantErr: ErrInvalid,
			wantMsg: "PATH: manifest.json: invalid JSON",
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
			name:    "docker 25 without ref",
			build:   docker25,
			wantErr: ErrAmbiguous,
			wantMsg: "image: PATH holds 2 images, pick one with --ref: busybox:latest, alpine:3",
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
			name:    "platform not in index",
			build:   multiPlatform,
			opts:    Options{Platform: "linux/s390x"},
			wantErr: ErrNotFound,
			wantMsg: "no manifest for platform linux/s390x (multi: has linux/amd64, linux/arm64)",
		},
		{
			name:    "platform malformed",
			build:   multiPlatform,
			opts:    Options{Platform: "linux"},
			wantErr: ErrInvalid,
			wantMsg: `bad platform "linux"`,
		},
		{
			name: "platform checked against config when asked",
			build: func(t *testing.T) *layoutBuilder {
				b := newLayout(t)
				m, _ := b.image(imageSpec{platform: "linux/amd64", layers: [][]byte{layerTar(t, "a")}})
				m.Platform = nil
				b.top(m, "")
				return b.oci()
			},
			opts:    Options{Platform: "linux/arm64"},
			wantErr: ErrNotFound,
			wantMsg: "image is for linux/amd64, not linux/arm64",
		},
		{
			name: "host platform takes a single foreign image",
			build: func(t *testing.T) *layoutBuilder {
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
			build:      func(t *testing.T) *layoutBuilder { b, _, _ := twoImages(t); return b },
			opts:       Options{Ref: "b"},
			wantRef:    "b",
			wantLayers: []string{"b"},
		},
		{
			name:    "several images without ref",
			build:   func(t *testing.T) *layoutBuilder { b, _, _ := twoImages(t); return b },
			wantErr: ErrAmbiguous,
			wantMsg: "image: PATH holds 2 images, pick one with --ref: a, b",
		},
		{
			name:    "ref not found",
			build:   func(t *testing.T) *layoutBuilder { b, _, _ := twoImages(t); return b },
			opts:    Options{Ref: "c"},
			wantErr: ErrNotFound,
			wantMsg: `no image named "c"; it has: a, b`,
		},
		{
			name: "bare tag ambiguous",
			build: func(t *testing.T) *layoutBuilder {
				b := newLayout(t)
				b.legacy([]string{"a:1"}, layerTar(t, "a"))
				b.legacy([]string{"b:1"}, layerTar(t, "b"))
				return b.manifestJSON()
			},
			opts:    Options{Ref: "1"},
			wantErr: ErrAmbiguous,
			wantMsg: `ref "1" matches 2 images: a:1, b:1`,
		},
		{
			name: "one image under two refs",
			build: func(t *testing.T) *layoutBuilder {
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
			build: func(t *testing.T) *layoutBuilder {
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
			name: "bad digest used as a path",
			build: func(t *testing.T) *layoutBuilder {
				b := newLayout(t)
				b.top(v1.Descriptor{MediaType: v1.MediaTypeImageManifest, Digest: "sha256:../../etc/passwd", Size: 10}, "")
				return b.oci()
			},
			wantErr: ErrInvalid,
			wantMsg: `bad digest "sha256:../../etc/passwd"`,
		},
		{
			name: "bad layer digest",
			build: func(t *testing.T) *layoutBuilder {
				b := newLayout(t)
				_, cfg := b.image(imageSpec{layers: [][]byte{layerTar(t, "a")}})
				m := v1.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: v1.MediaTypeImageManifest, Config: cfg,
					Layers: []v1.Descriptor{{MediaType: v1.MediaTypeImageLayer, Digest: "sha256:../../../../etc/shadow", Size: 3}}}
				b.top(b.blob(v1.MediaTypeImageManifest, mustJSON(t, m)), "")
				return b.oci()
			},
			wantErr: ErrInvalid,
			wantMsg: "layer 0: bad digest",
		},
		{
			name: "uppercase digest",
			build: func(t *testing.T) *layoutBuilder {
				b, m := simple(t)
				m.Digest = digest.Digest(strings.ToUpper(string(m.Digest)))
				b.index = []v1.Descriptor{m}
				return b.oci()
			},
			wantErr: ErrUnsupported, // "SHA256" is not an algorithm we know
			wantMsg: "bad digest",
		},
		{
			name: "uppercase hex",
			build: func(t *testing.T) *layoutBuilder {
				b, m := simple(t)
				m.Digest = digest.Digest("sha256:" + strings.ToUpper(m.Digest.Encoded()))
				b.index = []v1.Descriptor{m}
				return b.oci()
			},
			wantErr: ErrInvalid,
			wantMsg: "lowercase hex",
		},
		{
			name: "layer content does not match digest",
			build: func(t *testing.T) *layoutBuilder {
				b, m := simple(t)
				name := layerBlobName(t, b, m, 0)
				b.files[name] = layerTar(t, "z") // same size
				return b
			},
			wantRef:  "v1",
			layerErr: ErrDigest,
			wantMsg:  "PATH: layer 0 (blobs/sha256/",
		},
		{
			name: "layer size does not match descriptor",
			build: func(t *testing.T) *layoutBuilder {
				b, m := simple(t)
				name := layerBlobName(t, b, m, 1)
				b.files[name] = append(b.files[name], 0)
				return b
			},
			wantRef:  "v1",
			layerErr: ErrDigest,
			wantMsg:  "size mismatch",
		},
		{
			name: "missing layer blob",
			build: func(t *testing.T) *layoutBuilder {
				b, m := simple(t)
				delete(b.files, layerBlobName(t, b, m, 1))
				return b
			},
			wantRef:  "v1",
			layerErr: ErrNotFound,
			wantMsg:  "layer 1: blobs/sha256/",
		},
		{
			name: "missing manifest blob",
			build: func(t *testing.T) *layoutBuilder {
				b, m := simple(t)
				delete(b.files, blobName(m.Digest))
				return b
			},
			wantErr: ErrNotFound,
			wantMsg: "missing",
		},
		{
			name: "manifest content does not match digest",
			build: func(t *testing.T) *layoutBuilder {
				b, m := simple(t)
				raw := b.files[blobName(m.Digest)]
				b.files[blobName(m.Digest)] = bytes.Replace(raw, []byte(`"schemaVersion":2`), []byte(`"schemaVersion":3`), 1)
				return b
			},
			wantErr: ErrDigest,
		},
		{
			name: "manifest size does not match descriptor",
			build: func(t *testing.T) *layoutBuilder {
				b, m := simple(t)
				b.files[blobName(m.Digest)] = append(b.files[blobName(m.Digest)], '\n')
				return b
			},
			wantErr: ErrDigest,
			wantMsg: "size mismatch",
		},
		{
			name: "manifest size beyond cap",
			build: func(t *testing.T) *layoutBuilder {
				b, m := simple(t)
				m.Size = maxJSONSize + 1
				b.index = []v1.Descriptor{m}
				return b.oci()
			},
			wantErr: ErrInvalid,
			wantMsg: "out of range",
		},
		{
			name:    "junk index.json",
			build:   func(t *testing.T) *layoutBuilder { b, _ := simple(t); b.file("index.json", []byte("{\"manifests\": [1,")); return b },
			wantErr: ErrInvalid,
			wantMsg: "PATH: index.json: invalid JSON",
		},
		{
			name: "junk manifest",
			build: func(t *testing.T) *layoutBuilder {
				b := newLayout(t)
				b.top(b.blob(v1.MediaTypeImageManifest, []byte("not json")), "")
				return b.oci()
			},
			wantErr: ErrInvalid,
			wantMsg: "invalid JSON",
		},
		{
			name: "junk config",
			build: func(t *testing.T) *layoutBuilder {
				b := newLayout(t)
				cfg := b.blob(v1.MediaTypeImageConfig, []byte(`{"rootfs": 7}`))
				m := v1.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: v1.MediaTypeImageManifest, Config: cfg}
				b.top(b.blob(v1.MediaTypeImageManifest, mustJSON(t, m)), "")
				return b.oci()
			},
			wantErr: ErrInvalid,
			wantMsg: ": config sha256:",
		},
		{
			name: "diff_ids do not match layers",
			build: func(t *testing.T) *layoutBuilder {
				b := newLayout(t)
				m, _ := b.image(imageSpec{layers: [][]byte{layerTar(t, "a")}, diffIDs: []digest.Digest{digest.FromString("1"), digest.FromString("2")}})
				b.top(m, "")
				return b.oci()
			},
			wantErr: ErrInvalid,
			wantMsg: "2 diff_ids for 1 layers",
		},
		{
			name:    "empty layout",
			build:   func(t *testing.T) *layoutBuilder { return newLayout(t).oci() },
			wantErr: ErrNotFound,
			wantMsg: "PATH: index.json lists no images (empty layout)",
		},
		{
			name: "missing index.json",
			build: func(t *testing.T) *layoutBuilder {
				b, _ := simple(t)
				delete(b.files, "index.json")
				return b
			},
			wantErr: ErrNotFound,
			wantMsg: "no index.json or manifest.json",
		},
		{
			name: "missing oci-layout",
			build: func(t *testing.T) *layoutBuilder {
				b, _ := simple(t)
				delete(b.files, "oci-layout")
				return b
			},
			wantErr: ErrNotFound,
			wantMsg: "oci-layout: missing",
		},
		{
			name: "oci-layout version",
			build: func(t *testing.T) *layoutBuilder {
				b, _ := simple(t)
				b.file("oci-layout", []byte(`{"imageLayoutVersion":"2.0.0"}`))
				return b
			},
			wantErr: ErrUnsupported,
			wantMsg: `imageLayoutVersion "2.0.0"`,
		},
		{
			name: "oci-layout without version",
			build: func(t *testing.T) *layoutBuilder {
				b, _ := simple(t)
				b.file("oci-layout", []byte(`{}`))
				return b
			},
			wantErr: ErrInvalid,
			wantMsg: "no imageLayoutVersion",
		},
		{
			name: "schema 1 manifest",
			build: func(t *testing.T) *layoutBuilder {
				b := newLayout(t)
				b.top(b.blob(mediaTypeDockerSchema1JWS, []byte(`{"schemaVersion":1,"fsLayers":[]}`)), "")
				return b.oci()
			},
			wantErr: ErrUnsupported,
			wantMsg: "schema 1",
		},
		{
			name: "unsupported manifest media type",
			build: func(t *testing.T) *layoutBuilder {
				b := newLayout(t)
				b.top(b.blob("application/vnd.example.thing+json", []byte(`{"schemaVersion":2}`)), "")
				return b.oci()
			},
			wantErr: ErrUnsupported,
			wantMsg: `unsupported media type "application/vnd.example.thing+json"`,
		},
		{
			name: "descriptor and document disagree",
			build: func(t *testing.T) *layoutBuilder {
				b, m := simple(t)
				m.MediaType = v1.MediaTypeImageIndex
				b.index = []v1.Descriptor{m}
				return b.oci()
			},
			wantErr: ErrInvalid,
			wantMsg: "descriptor says",
		},
		{
			name: "not a container image",
			build: func(t *testing.T) *layoutBuilder {
				b := newLayout(t)
				cfg := b.blob("application/vnd.cncf.helm.config.v1+json", []byte(`{}`))
				m := v1.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: v1.MediaTypeImageManifest, Config: cfg}
				b.top(b.blob(v1.MediaTypeImageManifest, mustJSON(t, m)), "")
				return b.oci()
			},
			wantErr: ErrUnsupported,
			wantMsg: "not a container image",
		},
		{
			name: "indexes nested too deep",
			build: func(t *testing.T) *layoutBuilder {
				b := newLayout(t)
				d, _ := b.image(imageSpec{layers: [][]byte{layerTar(t, "a")}})
				for range maxIndexDepth + 1 {
					d = b.indexBlob(false, d)
				}
				b.top(d, "")
				return b.oci()
			},
			wantErr: ErrInvalid,
			wantMsg: "nested more than 8 deep",
		},
		{
			name: "indexes nested to the limit",
			build: func(t *testing.T) *layoutBuilder {
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
			build: func(t *testing.T) *layoutBuilder {
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
			build: func(t *testing.T) *layoutBuilder {
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

// layerBlobName returns the blob name of layer i of manifest m in b.
func layerBlobName(t *testing.T, b *layoutBuilder, m v1.Descriptor, i int) string {
	t.Helper()
	var man v1.Manifest
	must(t, json.Unmarshal(b.files[blobName(m.Digest)], &man))
	return blobName(man.Layers[i].Digest)
}

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
		build func(t *testing.T) *layoutBuilder
		want  []string
	}{
		{"oci", func(t *testing.T) *layoutBuilder { b, _, _ := twoImages(t); return b }, []string{"a", "b"}},
		{"docker 25", docker25, []string{"busybox:latest", "alpine:3"}},
		{"legacy", func(t *testing.T) *layoutBuilder {
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

func TestOpenPathKinds(t *testing.T) {
	if _, err := Open(filepath.Join(t.TempDir(), "missing"), Options{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("Open(missing) = %v, want ErrNotFound", err)
	}
	if _, err := os.Stat("/dev/null"); err == nil {
		if _, err := Open("/dev/null", Options{}); !errors.Is(err, ErrInvalid) {
			t.Errorf("Open(/dev/null) = %v, want ErrInvalid", err)
		}
	}
	empty := t.TempDir()
	if _, err := Open(empty, Options{}); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "neither an OCI layout nor a docker save") {
		t.Errorf("Open(empty dir) = %v, want ErrNotFound naming both formats", err)
	}
}

// TestDirSymlinkEscape: a blob that is a symlink out of the layout is not
// followed.
func TestDirSymlinkEscape(t *testing.T) {
	b, m := simple(t)
	name := layerBlobName(t, b, m, 0)
	outside := filepath.Join(t.TempDir(), "secret")
	must(t, os.WriteFile(outside, b.files[name], 0o644))
	delete(b.files, name)
	b.symlinks[name] = outside
	dir := b.dir()
	im, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	if _, err := im.LayerBlob(0); err == nil || !errors.Is(err, ErrInvalid) {
		t.Errorf("LayerBlob(symlink out of the layout) = %v, want ErrInvalid", err)
	}
}
