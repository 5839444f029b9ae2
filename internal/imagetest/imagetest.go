// Package imagetest builds tar layers and OCI image layouts in code, for tests, fuzz seeds,
// benchmarks and the demo image. Nothing in it is used by the product itself.
package imagetest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/klauspost/compress/zstd"
)

// Epoch is the mtime entries get when they name none.
var Epoch = time.Unix(1700000000, 0)

// Entry is one tar entry of a layer.
type Entry struct {
	Name     string
	Type     byte // tar typeflag; 0 means a regular file
	Body     string
	Mode     int64 // 0 means 0644 (files) or 0755 (directories)
	UID, GID int
	Link     string
	Xattrs   map[string]string
	Devmajor int64
	Devminor int64
	Mtime    time.Time
	PAX      map[string]string
	Format   tar.Format // 0 means PAX
}

// Reg is a regular file.
func Reg(name, body string) Entry { return Entry{Name: name, Type: tar.TypeReg, Body: body} }

// Dir is a directory.
func Dir(name string) Entry { return Entry{Name: name, Type: tar.TypeDir} }

// Sym is a symlink.
func Sym(name, target string) Entry { return Entry{Name: name, Type: tar.TypeSymlink, Link: target} }

// Hard is a hard link to target.
func Hard(name, target string) Entry { return Entry{Name: name, Type: tar.TypeLink, Link: target} }

// Whiteout hides name (a path) in lower layers.
func Whiteout(name string) Entry {
	dir, base := filepath.Split(name)
	return Reg(dir+".wh."+base, "")
}

// Opaque hides every lower child of dir.
func Opaque(dir string) Entry { return Reg(filepath.Join(dir, ".wh..wh..opq"), "") }

// With returns f changed by fn, for table literals.
func (f Entry) With(fn func(*Entry)) Entry { fn(&f); return f }

// Layer writes files as an uncompressed tar stream.
func Layer(files ...Entry) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		if err := writeEntry(tw, f); err != nil {
			panic(fmt.Sprintf("imagetest: %s: %v", f.Name, err))
		}
	}
	if err := tw.Close(); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

func writeEntry(tw *tar.Writer, f Entry) error {
	typ := f.Type
	if typ == 0 {
		typ = tar.TypeReg
	}
	mode := f.Mode
	if mode == 0 {
		mode = 0o644
		if typ == tar.TypeDir {
			mode = 0o755
		}
	}
	mtime := f.Mtime
	if mtime.IsZero() {
		mtime = Epoch
	}
	h := &tar.Header{
		Typeflag: typ, Name: f.Name, Linkname: f.Link, Mode: mode, Uid: f.UID, Gid: f.GID,
		ModTime: mtime, Devmajor: f.Devmajor, Devminor: f.Devminor, Format: f.Format,
	}
	if h.Format == 0 {
		h.Format = tar.FormatPAX
	}
	if typ == tar.TypeReg {
		h.Size = int64(len(f.Body))
	}
	if len(f.Xattrs) > 0 || len(f.PAX) > 0 {
		h.PAXRecords = map[string]string{}
		for k, v := range f.Xattrs {
			h.PAXRecords["SCHILY.xattr."+k] = v
		}
		for k, v := range f.PAX {
			h.PAXRecords[k] = v
		}
	}
	if err := tw.WriteHeader(h); err != nil {
		return err
	}
	if h.Size > 0 {
		_, err := tw.Write([]byte(f.Body))
		return err
	}
	return nil
}

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
