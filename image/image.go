package image

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// Options say which image of a layout to open. The zero value opens the only
// image of a layout, for the host platform.
type Options struct {
	// Ref picks an image by name: an org.opencontainers.image.ref.name or
	// io.containerd.image.name annotation of index.json, or a docker RepoTag
	// ("name:tag"; "name" means name:latest, and a bare tag is accepted when
	// only one image has it). A manifest digest ("sha256:...") picks an
	// unnamed image.
	Ref string
	// Platform is "os/arch[/variant]"; "" is the host. It picks a manifest
	// from image indexes; arm64 without a variant is v8, and a CPU level
	// variant also accepts older levels (linux/arm/v7 takes v6). When set, a
	// manifest reached without a platform must also match its config.
	Platform string
}

// Layer describes one layer blob of an image.
type Layer struct {
	Digest    digest.Digest // digest of the blob as stored (what OpenLayer verifies); may be "" if unknown
	DiffID    digest.Digest // from the config's rootfs.diff_ids, "" if absent
	MediaType string        // as declared ("" for docker-save layers)
	Size      int64         // blob size in bytes
}

// Image is one image opened from a layout. Its fields are read-only.
type Image struct {
	Path   string   // what was opened
	ID     string   // stable cache key, "sha256:<64hex>": see Open
	Ref    string   // chosen ref ("" if none)
	Config v1.Image // parsed config
	Layers []Layer  // base first

	st      store
	loose   bool     // made by FromManifest: no layout at Path
	members []string // layout member of each layer blob
	urls    []bool   // layer descriptor has URLs (a foreign layer, often absent)
}

// Open opens the image at path: an OCI image layout or a docker save
// layout, as a directory or as a tar archive (any regular file), which is
// read in place. When a layout has both index.json and manifest.json (docker
// 25 and later) the index is read and the RepoTags of manifest.json name its
// images.
//
// Open reads and verifies the JSON documents (index, manifests, config)
// only; layer blobs are checked by LayerBlob and OpenLayer. The exception is
// docker save, whose manifest.json has no layer descriptors: Open takes each
// layer's size from its file and looks at its first bytes (see Layer.Digest).
//
// ID is the manifest's sha256 (its digest when that is sha256). For a
// docker save layout without index.json it is a sha256 over the config
// digest and the layer paths of the manifest.json entry (not its tags).
func Open(path string, opts Options) (*Image, error) {
	want, err := parsePlatform(opts.Platform)
	if err != nil {
		return nil, &lineError{fmt.Errorf("image: %s: %w", path, err)}
	}
	o := &opener{path: path, want: want, explicit: opts.Platform != ""}
	im, err := o.open(opts.Ref)
	if err != nil {
		return nil, o.fail(err)
	}
	return im, nil
}

// fail gives an error the "image: PATH: " prefix unless it carries it.
func (o *opener) fail(err error) error {
	var de *DigestError
	if errors.As(err, &de) {
		return de
	}
	if ke, ok := err.(*kindError); ok && ke.whole {
		return &lineError{err}
	}
	return &lineError{fmt.Errorf("image: %s: %w", o.path, err)}
}

// openStore opens the directory or archive at o.path.
func (o *opener) openStore() error {
	fi, err := os.Stat(o.path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		if errors.Is(err, fs.ErrNotExist) {
			return errorf(ErrNotFound, "no such file or directory")
		}
		return err
	}
	switch {
	case fi.IsDir():
		s, err := openDirStore(o.path)
		if err != nil {
			return err
		}
		o.st = s
	case fi.Mode().IsRegular():
		f, err := os.Open(o.path)
		if err != nil {
			return err
		}
		s, err := openArchiveStore(f)
		if err != nil {
			return err
		}
		o.st = s
	default:
		return errorf(ErrInvalid, "%s: not a directory or a regular file", fi.Mode().Type())
	}
	return nil
}

// format says which layout o.st holds: true for OCI, false for docker save.
func (o *opener) format() (oci bool, err error) {
	if _, err := o.st.open(v1.ImageIndexFile); err == nil {
		_, lerr := o.st.open(v1.ImageLayoutFile)
		_, derr := o.st.open(dockerManifestFile)
		if lerr != nil && derr == nil {
			return false, nil // an index.json docker did not vouch for: use manifest.json
		}
		return true, nil
	} else if !errors.Is(err, ErrNotFound) {
		return false, err
	}
	if _, err := o.st.open(dockerManifestFile); err == nil {
		return false, nil
	} else if !errors.Is(err, ErrNotFound) {
		return false, err
	}
	return false, errorf(ErrNotFound, "neither an OCI layout nor a docker save: no %s or %s", v1.ImageIndexFile, dockerManifestFile)
}

func (o *opener) open(ref string) (*Image, error) {
	if err := o.openStore(); err != nil {
		return nil, err
	}
	oci, err := o.format()
	var im *Image
	if err == nil {
		if oci {
			im, err = o.openLayout(ref)
		} else {
			im, err = o.openDocker(ref)
		}
	}
	if err != nil {
		o.st.close()
		return nil, err
	}
	im.st = o.st
	return im, nil
}

// applyConfig parses the config into im and pairs its diff_ids with the
// layers. With an explicit platform, the config's must match.
func (o *opener) applyConfig(im *Image, raw []byte, what string) error {
	if err := decodeJSON(raw, &im.Config, what); err != nil {
		return err
	}
	c := &im.Config
	if o.explicit && !o.want.matchesConfig(c.OS, c.Architecture, c.Variant) {
		have := normalizePlatform(c.OS, c.Architecture, c.Variant)
		return errorf(ErrNotFound, "image is for %s, not %s", have, o.want)
	}
	ids := c.RootFS.DiffIDs
	if len(ids) == 0 {
		return nil
	}
	if len(ids) != len(im.Layers) {
		return errorf(ErrInvalid, "%s: %d diff_ids for %d layers", what, len(ids), len(im.Layers))
	}
	for i, id := range ids {
		d, err := parseDigest(string(id))
		if err != nil {
			return fmt.Errorf("%s: diff_id %d: %w", what, i, err)
		}
		im.Layers[i].DiffID = d
	}
	return nil
}

// InLayout reports whether the image was read from a layout at Path (by Open), rather than
// made by FromManifest, whose Path is only a name.
func (im *Image) InLayout() bool { return !im.loose }

// Close releases the files of the image. Blobs handed out become unusable.
func (im *Image) Close() error {
	if im.st == nil {
		return nil
	}
	return im.st.close()
}

// Blob is a layer blob as it sits on disk: a span [Offset, Offset+Size) of
// File. File belongs to the Image: do not close it; it is valid until
// Image.Close. Several blobs may share one File (an archive), so read it
// with ReadAt only, never Read or Seek.
type Blob struct {
	File         *os.File
	Offset, Size int64
	Digest       digest.Digest
}

// ReadAt reads from the blob at off, relative to its start; io.EOF past the
// end. It is safe for concurrent use.
func (b *Blob) ReadAt(p []byte, off int64) (int, error) {
	return member{f: b.File, off: b.Offset, size: b.Size}.readAt(p, off)
}

func (im *Image) layerWhat(i int) string {
	return fmt.Sprintf("layer %d (%s)", i, im.members[i])
}

// LayerBlob returns layer i's blob after checking that it exists and has the
// size its descriptor declares (a *DigestError otherwise). It does not read
// the content: OpenLayer verifies the digest.
func (im *Image) LayerBlob(i int) (*Blob, error) {
	if i < 0 || i >= len(im.Layers) {
		return nil, &lineError{fmt.Errorf("image: %s: %w", im.Path, errorf(ErrNotFound, "layer %d: the image has %d layers", i, len(im.Layers)))}
	}
	l := im.Layers[i]
	m, err := im.st.open(im.members[i])
	if err != nil {
		if errors.Is(err, ErrNotFound) && im.urls[i] {
			err = fmt.Errorf("%w (a foreign layer: its descriptor has URLs, the layout lacks the blob)", err)
		}
		return nil, &lineError{fmt.Errorf("image: %s: layer %d: %w", im.Path, i, err)}
	}
	if m.size != l.Size {
		return nil, &DigestError{Path: im.Path, Object: im.layerWhat(i), Want: l.Digest, WantSize: l.Size, GotSize: m.size}
	}
	return &Blob{File: m.f, Offset: m.off, Size: m.size, Digest: l.Digest}, nil
}

// OpenLayer streams blob i and verifies it: when the stream ends, a size
// or digest mismatch is returned as an error from Read (a *DigestError,
// errors.Is(err, ErrDigest)), never silently. A layer whose Digest is ""
// is checked for size only. Readers of different layers, or several
// readers of one layer, may run concurrently.
func (im *Image) OpenLayer(i int) (io.ReadCloser, error) {
	b, err := im.LayerBlob(i)
	if err != nil {
		return nil, err
	}
	return newVerifyReader(io.NewSectionReader(b, 0, b.Size), b.Digest, b.Size, im.Path, im.layerWhat(i)), nil
}

// VerifyLayer reads r as layer i's blob (a download as it arrives, say)
// and verifies it as OpenLayer does: at the end of r, a size or digest
// mismatch is returned from Read as a *DigestError.
func (im *Image) VerifyLayer(i int, r io.Reader) (io.ReadCloser, error) {
	if i < 0 || i >= len(im.Layers) {
		return nil, &lineError{fmt.Errorf("image: %s: %w", im.Path, errorf(ErrNotFound, "layer %d: the image has %d layers", i, len(im.Layers)))}
	}
	l := im.Layers[i]
	return newVerifyReader(r, l.Digest, l.Size, im.Path, im.layerWhat(i)), nil
}

// List returns the references of the images at path, for messages and
// listings. Each image is listed once under each of its distinct names (a
// docker RepoTag, an index.json annotation; a containerd name that spells a
// RepoTag again, or a ref.name that is just its tag, is not repeated), or
// under its digest when it has no name. Images of every platform are
// listed.
func List(path string) ([]string, error) {
	want, _ := parsePlatform("")
	o := &opener{path: path, want: want}
	refs, err := o.list()
	if err != nil {
		return nil, o.fail(err)
	}
	return refs, nil
}

func (o *opener) list() ([]string, error) {
	if err := o.openStore(); err != nil {
		return nil, err
	}
	defer o.st.close()
	oci, err := o.format()
	if err != nil {
		return nil, err
	}
	var cs []*choice
	if oci {
		cs, err = o.layoutChoices()
	} else {
		cs, err = o.dockerChoices()
	}
	if err != nil {
		return nil, err
	}
	var refs []string
	listedConfigs := make(map[digest.Digest]bool)
	for _, c := range groupChoices(cs) {
		refs = append(refs, distinctNames(c, listedConfigs)...)
	}
	if oci {
		// RepoTags of images the index did not resolve for this host.
		norms := make(map[string]bool, len(refs))
		for _, r := range refs {
			norms[normalizeRef(r)] = true
		}
		for _, e := range o.dockerEntries() {
			for _, t := range e.RepoTags {
				if n := normalizeRef(t); !norms[n] {
					norms[n] = true
					refs = append(refs, t)
				}
			}
		}
	}
	return dedupe(refs), nil
}
