package imagetest

import (
	"bytes"
	"compress/gzip"
	_ "crypto/sha256" // go-digest's sha256, which it does not import itself
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"

	"github.com/klauspost/compress/zstd"
	digest "github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// Blob is a layer as stored: its bytes as they go into blobs/, their media type, and the
// digest of the uncompressed tar (the config's diff_id).
type Blob struct {
	MediaType string
	Data      []byte
	DiffID    digest.Digest
}

// TarBlob stores an uncompressed tar as it is.
func TarBlob(t []byte) Blob {
	return Blob{MediaType: v1.MediaTypeImageLayer, Data: t, DiffID: digest.FromBytes(t)}
}

// GzipBlob compresses a tar with compress/gzip.
func GzipBlob(t []byte) Blob {
	return Blob{MediaType: v1.MediaTypeImageLayerGzip, Data: Gzip(t), DiffID: digest.FromBytes(t)}
}

// ZstdBlob compresses a tar with klauspost/compress/zstd, as one frame.
func ZstdBlob(t []byte) Blob {
	return Blob{MediaType: v1.MediaTypeImageLayerZstd, Data: Zstd(t), DiffID: digest.FromBytes(t)}
}

// Gzip compresses b.
func Gzip(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b) // bytes.Buffer never fails
	zw.Close()
	return buf.Bytes()
}

// Zstd compresses b.
func Zstd(b []byte) []byte {
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		panic(err)
	}
	defer enc.Close()
	return enc.EncodeAll(b, nil)
}

// WriteLayout writes an OCI image layout with one image made of blobs (oldest first) to
// dir, tagged ref when ref is not empty, and returns the manifest digest.
func WriteLayout(dir, ref string, blobs ...Blob) (string, error) {
	l, err := CreateLayout(dir)
	if err != nil {
		return "", err
	}
	desc, err := l.AddImage(ref, blobs...)
	return desc.Digest.String(), err
}

// Layout is an OCI image layout directory being written.
type Layout struct {
	Dir string
}

// CreateLayout makes an empty layout at dir (created if missing; an index.json there is
// replaced by an empty one).
func CreateLayout(dir string) (*Layout, error) {
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
		return nil, err
	}
	l := &Layout{Dir: dir}
	marker, _ := json.Marshal(v1.ImageLayout{Version: v1.ImageLayoutVersion})
	if err := os.WriteFile(filepath.Join(dir, v1.ImageLayoutFile), marker, 0o644); err != nil {
		return nil, err
	}
	idx := v1.Index{Manifests: []v1.Descriptor{}}
	idx.SchemaVersion = 2
	idx.MediaType = v1.MediaTypeImageIndex
	return l, l.writeIndex(&idx)
}

// BlobPath is where the blob with digest d lives.
func (l *Layout) BlobPath(d digest.Digest) string {
	return filepath.Join(l.Dir, "blobs", d.Algorithm().String(), d.Encoded())
}

// WriteBlob stores data and returns its descriptor.
func (l *Layout) WriteBlob(mediaType string, data []byte) (v1.Descriptor, error) {
	d := digest.FromBytes(data)
	desc := v1.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(data))}
	return desc, os.WriteFile(l.BlobPath(d), data, 0o644)
}

func (l *Layout) writeJSONBlob(mediaType string, v any) (v1.Descriptor, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return v1.Descriptor{}, err
	}
	return l.WriteBlob(mediaType, data)
}

// Index reads index.json.
func (l *Layout) Index() (*v1.Index, error) {
	data, err := os.ReadFile(filepath.Join(l.Dir, v1.ImageIndexFile))
	if err != nil {
		return nil, err
	}
	var idx v1.Index
	if err := json.Unmarshal(data, &idx); err != nil {
		return nil, fmt.Errorf("index.json: %w", err)
	}
	return &idx, nil
}

func (l *Layout) writeIndex(idx *v1.Index) error {
	data, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	p := filepath.Join(l.Dir, v1.ImageIndexFile)
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}

// tag adds manifest to index.json under ref, replacing an older ref of the same name; an
// empty ref adds it without a name.
func (l *Layout) tag(ref string, manifest v1.Descriptor) error {
	idx, err := l.Index()
	if err != nil {
		return err
	}
	if ref != "" {
		kept := idx.Manifests[:0]
		for _, m := range idx.Manifests {
			if m.Annotations[v1.AnnotationRefName] != ref {
				kept = append(kept, m)
			}
		}
		idx.Manifests = kept
		manifest.Annotations = map[string]string{v1.AnnotationRefName: ref}
	}
	idx.Manifests = append(idx.Manifests, manifest)
	return l.writeIndex(idx)
}

// AddImage stores a single-platform image made of blobs (oldest first) and tags it ref (no
// name when ref is empty). The config names the host architecture and linux.
func (l *Layout) AddImage(ref string, blobs ...Blob) (v1.Descriptor, error) {
	var cfg v1.Image
	cfg.OS = "linux"
	cfg.Architecture = runtime.GOARCH
	cfg.RootFS.Type = "layers"
	cfg.RootFS.DiffIDs = []digest.Digest{}
	var m v1.Manifest
	m.SchemaVersion = 2
	m.MediaType = v1.MediaTypeImageManifest
	m.Layers = []v1.Descriptor{}
	for _, b := range blobs {
		desc, err := l.WriteBlob(b.MediaType, b.Data)
		if err != nil {
			return v1.Descriptor{}, err
		}
		m.Layers = append(m.Layers, desc)
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, b.DiffID)
	}
	var err error
	if m.Config, err = l.writeJSONBlob(v1.MediaTypeImageConfig, cfg); err != nil {
		return v1.Descriptor{}, err
	}
	desc, err := l.writeJSONBlob(v1.MediaTypeImageManifest, m)
	if err != nil {
		return v1.Descriptor{}, err
	}
	return desc, l.tag(ref, desc)
}

// Manifest reads the manifest tagged ref.
func (l *Layout) Manifest(ref string) (*v1.Manifest, error) {
	idx, err := l.Index()
	if err != nil {
		return nil, err
	}
	for _, d := range idx.Manifests {
		if d.Annotations[v1.AnnotationRefName] != ref {
			continue
		}
		data, err := os.ReadFile(l.BlobPath(d.Digest))
		if err != nil {
			return nil, err
		}
		var m v1.Manifest
		if err := json.Unmarshal(data, &m); err != nil {
			return nil, fmt.Errorf("manifest %s: %w", d.Digest, err)
		}
		return &m, nil
	}
	return nil, fmt.Errorf("%s: no manifest tagged %q", l.Dir, ref)
}

// LayerTar returns the uncompressed tar of a layer stored as a plain or gzip blob.
func (l *Layout) LayerTar(d v1.Descriptor) ([]byte, error) {
	data, err := os.ReadFile(l.BlobPath(d.Digest))
	if err != nil {
		return nil, err
	}
	switch d.MediaType {
	case v1.MediaTypeImageLayer:
		return data, nil
	case v1.MediaTypeImageLayerGzip:
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("layer %s: %w", d.Digest, err)
		}
		return io.ReadAll(zr)
	}
	return nil, fmt.Errorf("layer %s: media type %s not supported here", d.Digest, d.MediaType)
}

// Recompress tags as to a copy of the image from whose layers are re-encoded by recode
// (given the layer's position, oldest first, and its uncompressed tar). The config, and so
// the diff_ids, are shared: both images must merge to the same tree. A recode that sets
// Blob.DiffID has it checked against the tar.
func (l *Layout) Recompress(from, to string, recode func(i int, tarData []byte) (Blob, error)) error {
	m, err := l.Manifest(from)
	if err != nil {
		return err
	}
	for i, d := range m.Layers {
		raw, err := l.LayerTar(d)
		if err != nil {
			return err
		}
		b, err := recode(i, raw)
		if err != nil {
			return fmt.Errorf("layer %d: %w", i, err)
		}
		if b.DiffID != "" && b.DiffID != digest.FromBytes(raw) {
			return fmt.Errorf("layer %d: recode changed the uncompressed content", i)
		}
		if m.Layers[i], err = l.WriteBlob(b.MediaType, b.Data); err != nil {
			return err
		}
	}
	desc, err := l.writeJSONBlob(v1.MediaTypeImageManifest, m)
	if err != nil {
		return err
	}
	return l.tag(to, desc)
}
