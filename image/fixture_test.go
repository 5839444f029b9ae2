package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// layoutBuilder assembles an image layout in memory, then writes it as a
// directory or as a tar archive.
type layoutBuilder struct {
	t        testing.TB
	files    map[string][]byte
	symlinks map[string]string
	index    []v1.Descriptor // index.json entries
	docker   []dockerEntry   // manifest.json entries
}

func newLayout(t testing.TB) *layoutBuilder {
	return &layoutBuilder{t: t, files: map[string][]byte{}, symlinks: map[string]string{}}
}

func (b *layoutBuilder) file(name string, data []byte) { b.files[name] = data }

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// blob stores data under its sha256 and returns its descriptor.
func (b *layoutBuilder) blob(mediaType string, data []byte) v1.Descriptor {
	d := digest.FromBytes(data)
	b.files[blobName(d)] = data
	return v1.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(data))}
}

// imageSpec describes an image for layoutBuilder.image.
type imageSpec struct {
	platform string   // os/arch[/variant] written into the config; "" = linux/amd64
	layers   [][]byte // layer blobs as stored
	diffIDs  []digest.Digest
	docker   bool // docker media types instead of OCI
}

// image stores config, layers and manifest blobs and returns the manifest
// descriptor (with the platform set) and the config descriptor.
func (b *layoutBuilder) image(spec imageSpec) (manifest, config v1.Descriptor) {
	b.t.Helper()
	p := spec.platform
	if p == "" {
		p = "linux/amd64"
	}
	parts := strings.Split(p, "/")
	plat := &v1.Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) > 2 {
		plat.Variant = parts[2]
	}
	cfg := v1.Image{Platform: *plat}
	cfg.RootFS.Type = "layers"
	cfg.RootFS.DiffIDs = spec.diffIDs
	if cfg.RootFS.DiffIDs == nil {
		for _, l := range spec.layers {
			cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, diffIDOf(l))
		}
	}
	cfgType, manType, layerType := v1.MediaTypeImageConfig, v1.MediaTypeImageManifest, v1.MediaTypeImageLayerGzip
	if spec.docker {
		cfgType, manType = mediaTypeDockerConfig, mediaTypeDockerManifest
		layerType = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	}
	config = b.blob(cfgType, mustJSON(b.t, cfg))
	m := v1.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: manType, Config: config}
	for _, l := range spec.layers {
		lt := layerType
		if !isGzip(l) {
			lt = strings.TrimSuffix(lt, ".gzip")
			lt = strings.TrimSuffix(lt, "+gzip")
		}
		m.Layers = append(m.Layers, b.blob(lt, l))
	}
	manifest = b.blob(manType, mustJSON(b.t, m))
	manifest.Platform = plat
	return manifest, config
}

// indexBlob stores an image index of entries and returns its descriptor.
func (b *layoutBuilder) indexBlob(docker bool, entries ...v1.Descriptor) v1.Descriptor {
	mt := v1.MediaTypeImageIndex
	if docker {
		mt = mediaTypeDockerManifestList
	}
	idx := v1.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: mt, Manifests: entries}
	return b.blob(mt, mustJSON(b.t, idx))
}

// top adds an index.json entry, naming it ref (if not "").
func (b *layoutBuilder) top(d v1.Descriptor, ref string) {
	if ref != "" {
		d.Annotations = map[string]string{v1.AnnotationRefName: ref}
	}
	b.index = append(b.index, d)
}

// oci writes oci-layout and index.json from the entries added with top.
func (b *layoutBuilder) oci() *layoutBuilder {
	b.file(v1.ImageLayoutFile, []byte(`{"imageLayoutVersion":"1.0.0"}`))
	idx := v1.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: v1.MediaTypeImageIndex, Manifests: b.index}
	if idx.Manifests == nil {
		idx.Manifests = []v1.Descriptor{}
	}
	b.file(v1.ImageIndexFile, mustJSON(b.t, idx))
	return b
}

// legacy adds a docker save (pre-25) image: "<hex>.json" config and
// "<n>/layer.tar" layers. It returns the manifest.json entry.
func (b *layoutBuilder) legacy(tags []string, layers ...[]byte) dockerEntry {
	b.t.Helper()
	cfg := v1.Image{Platform: v1.Platform{OS: "linux", Architecture: "amd64"}}
	cfg.RootFS.Type = "layers"
	e := dockerEntry{RepoTags: tags}
	for _, l := range layers {
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, diffIDOf(l))
		id := digest.FromBytes(append([]byte("layer id "), l...)).Encoded()
		name := id + "/layer.tar"
		b.files[name] = l
		b.files[id+"/VERSION"] = []byte("1.0")
		e.Layers = append(e.Layers, name)
	}
	raw := mustJSON(b.t, cfg)
	e.Config = digest.FromBytes(raw).Encoded() + ".json"
	b.files[e.Config] = raw
	b.docker = append(b.docker, e)
	return e
}

// manifestJSON writes manifest.json from the entries added with legacy (and
// any appended to b.docker by hand).
func (b *layoutBuilder) manifestJSON() *layoutBuilder {
	b.file(dockerManifestFile, mustJSON(b.t, b.docker))
	return b
}

// dir writes the layout into a new directory and returns its path.
func (b *layoutBuilder) dir() string {
	b.t.Helper()
	dir := b.t.TempDir()
	for name, data := range b.files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			b.t.Fatal(err)
		}
	}
	for name, target := range b.symlinks {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.t.Fatal(err)
		}
		if err := os.Symlink(target, p); err != nil {
			b.t.Fatal(err)
		}
	}
	return dir
}

// tarBytes packs the layout as docker save would: directories, then files
// and symlinks in name order.
func (b *layoutBuilder) tarBytes() []byte { return b.packTar("") }

// packTar packs the layout, each name prefixed by prefix. With prefix "./"
// it looks like the output of tar -C DIR -c . (a "./" root entry first).
func (b *layoutBuilder) packTar(prefix string) []byte {
	b.t.Helper()
	var names []string
	dirs := map[string]bool{}
	for name := range b.files {
		names = append(names, name)
	}
	for name := range b.symlinks {
		names = append(names, name)
	}
	slices.Sort(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if prefix != "" {
		must(b.t, tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: prefix, Mode: 0o755}))
	}
	for _, name := range names {
		var parents []string
		for d := path.Dir(name); d != "." && !dirs[d]; d = path.Dir(d) {
			dirs[d] = true
			parents = append(parents, d)
		}
		for _, d := range slices.Backward(parents) {
			must(b.t, tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: prefix + d + "/", Mode: 0o755}))
		}
		if target, ok := b.symlinks[name]; ok {
			must(b.t, tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: prefix + name, Linkname: target, Mode: 0o777}))
			continue
		}
		data := b.files[name]
		must(b.t, tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: prefix + name, Size: int64(len(data)), Mode: 0o644}))
		_, err := tw.Write(data)
		must(b.t, err)
	}
	must(b.t, tw.Close())
	return buf.Bytes()
}

// tar writes the layout as a tar archive and returns its path.
func (b *layoutBuilder) tar() string {
	b.t.Helper()
	p := filepath.Join(b.t.TempDir(), "image.tar")
	must(b.t, os.WriteFile(p, b.tarBytes(), 0o644))
	return p
}

// dotTar writes the layout as tar -C DIR -c . would and returns its path.
func (b *layoutBuilder) dotTar() string {
	b.t.Helper()
	p := filepath.Join(b.t.TempDir(), "image.tar")
	must(b.t, os.WriteFile(p, b.packTar("./"), 0o644))
	return p
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// layerTar returns an uncompressed layer holding the given files.
func layerTar(t testing.TB, files ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		must(t, tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f, Size: int64(len(f)), Mode: 0o644}))
		_, err := tw.Write([]byte(f))
		must(t, err)
	}
	must(t, tw.Close())
	return buf.Bytes()
}

func gzipped(t testing.TB, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, err := zw.Write(data)
	must(t, err)
	must(t, zw.Close())
	return buf.Bytes()
}

func gunzip(data []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(zr)
}

func isGzip(data []byte) bool { return bytes.HasPrefix(data, []byte{0x1f, 0x8b}) }

// diffIDOf is the digest of a layer's uncompressed form.
func diffIDOf(layer []byte) digest.Digest {
	if !isGzip(layer) {
		return digest.FromBytes(layer)
	}
	data, err := gunzip(layer)
	if err != nil {
		panic(err)
	}
	return digest.FromBytes(data)
}

// simple is a layout with one OCI image of two layers, named "v1".
func simple(t testing.TB) (*layoutBuilder, v1.Descriptor) {
	b := newLayout(t)
	m, _ := b.image(imageSpec{layers: [][]byte{layerTar(t, "a"), gzipped(t, layerTar(t, "b"))}})
	b.top(m, "v1")
	b.oci()
	return b, m
}

// twoImages is a layout with OCI images "a" and "b".
func twoImages(t testing.TB) (*layoutBuilder, v1.Descriptor, v1.Descriptor) {
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
func multiPlatform(t testing.TB) *layoutBuilder {
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
func docker25(t testing.TB) *layoutBuilder {
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

// layerBlobName returns the blob name of layer i of manifest m in b.
func layerBlobName(t testing.TB, b *layoutBuilder, m v1.Descriptor, i int) string {
	t.Helper()
	var man v1.Manifest
	must(t, json.Unmarshal(b.files[blobName(m.Digest)], &man))
	return blobName(man.Layers[i].Digest)
}
