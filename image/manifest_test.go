package image

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// manifestOf returns a manifest and config for the layer blobs given.
func manifestOf(t *testing.T, blobs ...[]byte) (manifest, config []byte) {
	t.Helper()
	cfg := v1.Image{Platform: v1.Platform{OS: "linux", Architecture: "amd64"}}
	m := v1.Manifest{MediaType: v1.MediaTypeImageManifest}
	m.SchemaVersion = 2
	for _, b := range blobs {
		d := digest.FromBytes(b)
		m.Layers = append(m.Layers, v1.Descriptor{MediaType: v1.MediaTypeImageLayer, Digest: d, Size: int64(len(b))})
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, d)
	}
	cfg.RootFS.Type = "layers"
	config, _ = json.Marshal(cfg)
	m.Config = v1.Descriptor{MediaType: v1.MediaTypeImageConfig, Digest: digest.FromBytes(config), Size: int64(len(config))}
	manifest, _ = json.Marshal(m)
	return manifest, config
}

func TestFromManifest(t *testing.T) {
	a, b := []byte("layer a"), []byte("layer b, longer")
	man, cfg := manifestOf(t, a, b, a)
	im, err := FromManifest("reg.example/x:1", man, cfg, Options{Ref: "x:1"})
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	if len(im.Layers) != 3 || im.Layers[1].Size != int64(len(b)) || im.Layers[2].DiffID != digest.FromBytes(a) {
		t.Fatalf("layers %+v", im.Layers)
	}
	if im.ID != string(digest.FromBytes(man)) || im.Ref != "x:1" || im.Path != "reg.example/x:1" {
		t.Fatalf("ID %s Ref %s Path %s", im.ID, im.Ref, im.Path)
	}
	// Before SetLayerFile: not found.
	if _, err := im.LayerBlob(1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("LayerBlob before SetLayerFile: %v", err)
	}
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pa, pb := write("a", a), write("b", b)
	if err := im.SetLayerFile(0, pa); err != nil {
		t.Fatal(err)
	}
	// Layer 2 has layer 0's digest: it shares the file, and naming another is an error.
	if _, err := im.LayerBlob(2); err != nil {
		t.Fatalf("layer 2 shares layer 0's blob: %v", err)
	}
	if err := im.SetLayerFile(2, pb); err == nil {
		t.Fatal("SetLayerFile gave one digest two files")
	}
	if err := im.SetLayerFile(1, pb); err != nil {
		t.Fatal(err)
	}
	for i, want := range [][]byte{a, b, a} {
		rc, err := im.OpenLayer(i)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || string(got) != string(want) {
			t.Fatalf("layer %d: %q, %v", i, got, err)
		}
	}
	if err := im.SetLayerFile(3, pb); !errors.Is(err, ErrNotFound) {
		t.Fatalf("SetLayerFile(3): %v", err)
	}
}

func TestFromManifestBadBlob(t *testing.T) {
	a := []byte("layer a")
	man, cfg := manifestOf(t, a)
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"same size, other bytes", []byte("layer A")},
		{"short", []byte("layer")},
	} {
		im, err := FromManifest("x", man, cfg, Options{})
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, tc.name)
		os.WriteFile(p, tc.data, 0o644)
		im.SetLayerFile(0, p)
		rc, err := im.OpenLayer(0)
		if err == nil {
			_, err = io.ReadAll(rc)
			rc.Close()
		}
		if !errors.Is(err, ErrDigest) {
			t.Errorf("%s: %v, want a digest error", tc.name, err)
		}
		im.Close()
	}
}

func TestFromManifestInvalid(t *testing.T) {
	man, cfg := manifestOf(t, []byte("a"))
	idx, _ := json.Marshal(v1.Index{MediaType: v1.MediaTypeImageIndex, Manifests: []v1.Descriptor{}})
	for _, tc := range []struct {
		name          string
		man, cfg      []byte
		opts          Options
		want          error
		wantSubstring string
	}{
		{"config of other bytes", man, append([]byte(nil), append(cfg[:len(cfg)-1:len(cfg)-1], ' ')...), Options{}, ErrDigest, "config"},
		{"config missing", man, nil, Options{}, ErrDigest, "config"},
		{"an index", idx, cfg, Options{}, ErrInvalid, "index"},
		{"not JSON", []byte("{"), cfg, Options{}, ErrInvalid, "JSON"},
		{"schema 1", []byte(`{"schemaVersion":1,"fsLayers":[]}`), cfg, Options{}, ErrUnsupported, "schema 1"},
		{"other platform", man, cfg, Options{Platform: "linux/arm64"}, ErrNotFound, "linux/arm64"},
		{"bad platform", man, cfg, Options{Platform: "a/b/c/d"}, nil, "platform"},
	} {
		_, err := FromManifest("reg/x", tc.man, tc.cfg, tc.opts)
		if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) || !strings.Contains(err.Error(), tc.wantSubstring) {
			t.Errorf("%s: %v, want %v mentioning %q", tc.name, err, tc.want, tc.wantSubstring)
		}
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error of several lines: %q", tc.name, err)
		}
	}
}

// FuzzFromManifest: registry documents are untrusted; no input may panic, and an accepted one
// has a layer per descriptor.
func FuzzFromManifest(f *testing.F) {
	man, cfg := manifestOf(&testing.T{}, []byte("a"), []byte("bb"))
	f.Add(man, cfg)
	f.Add([]byte(`{"schemaVersion":2,"config":{},"layers":[{"digest":"sha256:00","size":-1}]}`), []byte("{}"))
	f.Fuzz(func(t *testing.T, man, cfg []byte) {
		im, err := FromManifest("fuzz", man, cfg, Options{})
		if err != nil {
			return
		}
		defer im.Close()
		for i, l := range im.Layers {
			if l.Size < 0 || l.Digest == "" {
				t.Fatalf("layer %d: %+v", i, l)
			}
		}
	})
}
