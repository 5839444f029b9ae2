package imagetest

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"

	"github.com/klauspost/compress/zstd"
)

// Gzip compresses b.
func Gzip(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
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

// Media types of layers.
const (
	MediaTar  = "application/vnd.oci.image.layer.v1.tar"
	MediaGzip = "application/vnd.oci.image.layer.v1.tar+gzip"
	MediaZstd = "application/vnd.oci.image.layer.v1.tar+zstd"
)

// Blob is a layer as stored: its bytes and media type, and its uncompressed tar for diff_ids.
type Blob struct {
	MediaType string
	Data      []byte
	Tar       []byte // uncompressed; nil means Data is uncompressed
}

// TarBlob, GzipBlob and ZstdBlob wrap an uncompressed layer.
func TarBlob(t []byte) Blob  { return Blob{MediaType: MediaTar, Data: t} }
func GzipBlob(t []byte) Blob { return Blob{MediaType: MediaGzip, Data: Gzip(t), Tar: t} }
func ZstdBlob(t []byte) Blob { return Blob{MediaType: MediaZstd, Data: Zstd(t), Tar: t} }

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// WriteLayout writes an OCI image layout with one image made of blobs (base first) to dir,
// tagged ref when ref is not empty. It returns the manifest digest.
func WriteLayout(dir, ref string, blobs ...Blob) (string, error) {
	put := func(b []byte) (string, error) {
		d := digestOf(b)
		p := filepath.Join(dir, "blobs", "sha256", d[len("sha256:"):])
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return "", err
		}
		return d, os.WriteFile(p, b, 0o644)
	}
	type desc struct {
		MediaType   string            `json:"mediaType"`
		Digest      string            `json:"digest"`
		Size        int               `json:"size"`
		Annotations map[string]string `json:"annotations,omitempty"`
		Platform    map[string]string `json:"platform,omitempty"`
	}
	var layers []desc
	var diffIDs []string
	for _, b := range blobs {
		d, err := put(b.Data)
		if err != nil {
			return "", err
		}
		layers = append(layers, desc{MediaType: b.MediaType, Digest: d, Size: len(b.Data)})
		t := b.Tar
		if t == nil {
			t = b.Data
		}
		diffIDs = append(diffIDs, digestOf(t))
	}
	cfg, _ := json.Marshal(map[string]any{
		"architecture": runtime.GOARCH, "os": "linux",
		"rootfs": map[string]any{"type": "layers", "diff_ids": diffIDs},
	})
	cd, err := put(cfg)
	if err != nil {
		return "", err
	}
	man, _ := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": desc{MediaType: "application/vnd.oci.image.config.v1+json", Digest: cd, Size: len(cfg)},
		"layers": layers,
	})
	md, err := put(man)
	if err != nil {
		return "", err
	}
	md0 := desc{MediaType: "application/vnd.oci.image.manifest.v1+json", Digest: md, Size: len(man),
		Platform: map[string]string{"os": "linux", "architecture": runtime.GOARCH}}
	if ref != "" {
		md0.Annotations = map[string]string{"org.opencontainers.image.ref.name": ref}
	}
	idx, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []desc{md0}})
	if err := os.WriteFile(filepath.Join(dir, "index.json"), idx, 0o644); err != nil {
		return "", err
	}
	return md, os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
}
