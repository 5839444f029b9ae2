package image

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestOpenInvalid opens malformed, tampered and incomplete layouts: each
// fails with a one-line error naming the image and what is wrong.
func TestOpenInvalid(t *testing.T) {
	cases := []openCase{
		{
			name: "docker save legacy tampered layer",
			build: func(t testing.TB) *layoutBuilder {
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
			build: func(t testing.TB) *layoutBuilder {
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
			build: func(t testing.TB) *layoutBuilder {
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
			build: func(t testing.TB) *layoutBuilder {
				b := newLayout(t)
				b.legacy([]string{"x:1"}, layerTar(t, "a"))
				b.docker[0].Layers[0] = "../../etc/passwd"
				return b.manifestJSON()
			},
			wantErr: ErrInvalid,
			wantMsg: "escapes",
		},
		{
			name: "docker save empty",
			build: func(t testing.TB) *layoutBuilder {
				b := newLayout(t)
				b.file(dockerManifestFile, []byte("[]"))
				return b
			},
			wantErr: ErrNotFound,
			wantMsg: "manifest.json lists no images",
		},
		{
			name: "docker save junk manifest.json",
			build: func(t testing.TB) *layoutBuilder {
				b := newLayout(t)
				b.file(dockerManifestFile, []byte("{junk"))
				return b
			},
			wantErr: ErrInvalid,
			wantMsg: "PATH: manifest.json: invalid JSON",
		},
		{
			name:    "docker 25 without ref",
			build:   docker25,
			wantErr: ErrAmbiguous,
			wantMsg: "image: PATH holds 2 images, pick one with --ref: busybox:latest, alpine:3",
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
			build: func(t testing.TB) *layoutBuilder {
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
			name:    "several images without ref",
			build:   func(t testing.TB) *layoutBuilder { b, _, _ := twoImages(t); return b },
			wantErr: ErrAmbiguous,
			wantMsg: "image: PATH holds 2 images, pick one with --ref: a, b",
		},
		{
			name:    "ref not found",
			build:   func(t testing.TB) *layoutBuilder { b, _, _ := twoImages(t); return b },
			opts:    Options{Ref: "c"},
			wantErr: ErrNotFound,
			wantMsg: `no image named "c"; it has: a, b`,
		},
		{
			name: "bare tag ambiguous",
			build: func(t testing.TB) *layoutBuilder {
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
			name: "bad digest used as a path",
			build: func(t testing.TB) *layoutBuilder {
				b := newLayout(t)
				b.top(v1.Descriptor{MediaType: v1.MediaTypeImageManifest, Digest: "sha256:../../etc/passwd", Size: 10}, "")
				return b.oci()
			},
			wantErr: ErrInvalid,
			wantMsg: `bad digest "sha256:../../etc/passwd"`,
		},
		{
			name: "bad layer digest",
			build: func(t testing.TB) *layoutBuilder {
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
			build: func(t testing.TB) *layoutBuilder {
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
			build: func(t testing.TB) *layoutBuilder {
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
			build: func(t testing.TB) *layoutBuilder {
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
			build: func(t testing.TB) *layoutBuilder {
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
			build: func(t testing.TB) *layoutBuilder {
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
			build: func(t testing.TB) *layoutBuilder {
				b, m := simple(t)
				delete(b.files, blobName(m.Digest))
				return b
			},
			wantErr: ErrNotFound,
			wantMsg: "missing",
		},
		{
			name: "manifest content does not match digest",
			build: func(t testing.TB) *layoutBuilder {
				b, m := simple(t)
				raw := b.files[blobName(m.Digest)]
				b.files[blobName(m.Digest)] = bytes.Replace(raw, []byte(`"schemaVersion":2`), []byte(`"schemaVersion":3`), 1)
				return b
			},
			wantErr: ErrDigest,
		},
		{
			name: "manifest size does not match descriptor",
			build: func(t testing.TB) *layoutBuilder {
				b, m := simple(t)
				b.files[blobName(m.Digest)] = append(b.files[blobName(m.Digest)], '\n')
				return b
			},
			wantErr: ErrDigest,
			wantMsg: "size mismatch",
		},
		{
			name: "manifest size beyond cap",
			build: func(t testing.TB) *layoutBuilder {
				b, m := simple(t)
				m.Size = maxJSONSize + 1
				b.index = []v1.Descriptor{m}
				return b.oci()
			},
			wantErr: ErrInvalid,
			wantMsg: "out of range",
		},
		{
			name: "junk index.json",
			build: func(t testing.TB) *layoutBuilder {
				b, _ := simple(t)
				b.file("index.json", []byte("{\"manifests\": [1,"))
				return b
			},
			wantErr: ErrInvalid,
			wantMsg: "PATH: index.json: invalid JSON",
		},
		{
			name: "junk manifest",
			build: func(t testing.TB) *layoutBuilder {
				b := newLayout(t)
				b.top(b.blob(v1.MediaTypeImageManifest, []byte("not json")), "")
				return b.oci()
			},
			wantErr: ErrInvalid,
			wantMsg: "invalid JSON",
		},
		{
			name: "junk config",
			build: func(t testing.TB) *layoutBuilder {
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
			build: func(t testing.TB) *layoutBuilder {
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
			build:   func(t testing.TB) *layoutBuilder { return newLayout(t).oci() },
			wantErr: ErrNotFound,
			wantMsg: "PATH: index.json lists no images (empty layout)",
		},
		{
			name: "missing index.json",
			build: func(t testing.TB) *layoutBuilder {
				b, _ := simple(t)
				delete(b.files, "index.json")
				return b
			},
			wantErr: ErrNotFound,
			wantMsg: "no index.json or manifest.json",
		},
		{
			name: "missing oci-layout",
			build: func(t testing.TB) *layoutBuilder {
				b, _ := simple(t)
				delete(b.files, "oci-layout")
				return b
			},
			wantErr: ErrNotFound,
			wantMsg: "oci-layout: missing",
		},
		{
			name: "oci-layout version",
			build: func(t testing.TB) *layoutBuilder {
				b, _ := simple(t)
				b.file("oci-layout", []byte(`{"imageLayoutVersion":"2.0.0"}`))
				return b
			},
			wantErr: ErrUnsupported,
			wantMsg: `imageLayoutVersion "2.0.0"`,
		},
		{
			name: "oci-layout without version",
			build: func(t testing.TB) *layoutBuilder {
				b, _ := simple(t)
				b.file("oci-layout", []byte(`{}`))
				return b
			},
			wantErr: ErrInvalid,
			wantMsg: "no imageLayoutVersion",
		},
		{
			name: "schema 1 manifest",
			build: func(t testing.TB) *layoutBuilder {
				b := newLayout(t)
				b.top(b.blob(mediaTypeDockerSchema1JWS, []byte(`{"schemaVersion":1,"fsLayers":[]}`)), "")
				return b.oci()
			},
			wantErr: ErrUnsupported,
			wantMsg: "schema 1",
		},
		{
			name: "unsupported manifest media type",
			build: func(t testing.TB) *layoutBuilder {
				b := newLayout(t)
				b.top(b.blob("application/vnd.example.thing+json", []byte(`{"schemaVersion":2}`)), "")
				return b.oci()
			},
			wantErr: ErrUnsupported,
			wantMsg: `unsupported media type "application/vnd.example.thing+json"`,
		},
		{
			name: "descriptor and document disagree",
			build: func(t testing.TB) *layoutBuilder {
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
			build: func(t testing.TB) *layoutBuilder {
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
			build: func(t testing.TB) *layoutBuilder {
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
	}
	for _, c := range cases {
		t.Run(c.name, c.run)
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
