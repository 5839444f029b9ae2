package image

import (
	"fmt"
	"io/fs"
	"os"
	"sync"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// FromManifest builds an image from its manifest and config documents alone, for layer blobs
// that are not in a layout but arrive as files of their own (downloads from a registry, say).
// name stands for the image in messages and in Image.Path. Each layer's blob is unknown until
// SetLayerFile names its file; LayerBlob and OpenLayer fail with ErrNotFound before that.
//
// The manifest must be an image manifest (OCI or docker schema 2), not an index; the config
// must match the digest and size the manifest gives it. With opts.Platform, the config must
// be for that platform. opts.Ref is only recorded as Image.Ref.
func FromManifest(name string, manifest, config []byte, opts Options) (*Image, error) {
	want, err := parsePlatform(opts.Platform)
	if err != nil {
		return nil, &lineError{fmt.Errorf("image: %s: %w", name, err)}
	}
	st := &fileStore{paths: make(map[string]string)}
	o := &opener{path: name, st: st, want: want, explicit: opts.Platform != ""}
	im, err := o.fromManifest(manifest, config, opts.Ref)
	if err != nil {
		return nil, o.fail(err)
	}
	im.st, im.loose = st, true
	return im, nil
}

func (o *opener) fromManifest(manifest, config []byte, ref string) (*Image, error) {
	if len(manifest) > maxJSONSize {
		return nil, errorf(ErrInvalid, "manifest: %d bytes, more than %d", len(manifest), maxJSONSize)
	}
	d := v1.Descriptor{Digest: sha256Of(manifest), Size: int64(len(manifest))}
	what := "manifest " + string(d.Digest)
	k, err := documentKind("", manifest, what)
	if err != nil {
		return nil, err
	}
	if k != kindManifest {
		return nil, errorf(ErrInvalid, "%s: an image index, not a manifest", what)
	}
	r := &resolved{desc: d, raw: manifest}
	if err := decodeJSON(manifest, &r.man, what); err != nil {
		return nil, err
	}
	// The config arrives beside the manifest: check it against its descriptor as readBlob
	// would, then let imageOf find it among the blobs read.
	cd := r.man.Config
	cdg, err := parseDigest(string(cd.Digest))
	if err != nil {
		return nil, fmt.Errorf("%s: config: %w", what, err)
	}
	if int64(len(config)) != cd.Size || digestOf(cdg, config) != cdg {
		return nil, &DigestError{Path: o.path, Object: what + ": config " + string(cdg), Want: cdg,
			Got: digestOf(cdg, config), WantSize: cd.Size, GotSize: int64(len(config))}
	}
	o.blobs = map[digest.Digest][]byte{cdg: config}
	return o.imageOf(r, ref)
}

// SetLayerFile says that the blob of layer i of an image made by FromManifest is the file at
// path. The file is opened, and checked against the layer's size and digest, only when the
// layer is read. Every layer with the same digest shares the file. It is safe to call while
// other layers are being read.
func (im *Image) SetLayerFile(i int, path string) error {
	st, ok := im.st.(*fileStore)
	if !ok {
		return fmt.Errorf("image: %s: SetLayerFile on an image read from a layout", im.Path)
	}
	if i < 0 || i >= len(im.Layers) {
		return &lineError{fmt.Errorf("image: %s: %w", im.Path, errorf(ErrNotFound, "layer %d: the image has %d layers", i, len(im.Layers)))}
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if old, ok := st.paths[im.members[i]]; ok && old != path {
		return fmt.Errorf("image: %s: layer %d: its blob is already %s", im.Path, i, old)
	}
	st.paths[im.members[i]] = path
	return nil
}

// fileStore finds blobs at the paths SetLayerFile gave them.
type fileStore struct {
	mu    sync.Mutex
	paths map[string]string // member name -> path
	files openFiles
}

func (s *fileStore) open(name string) (member, error) {
	s.mu.Lock()
	p, ok := s.paths[name]
	s.mu.Unlock()
	if !ok {
		return member{}, errorf(ErrNotFound, "%s: not downloaded", name)
	}
	return s.files.get(name, p, func() (fs.FileInfo, error) { return os.Stat(p) }, func() (*os.File, error) { return os.Open(p) })
}

func (s *fileStore) close() error {
	_, err := s.files.close()
	return err
}
