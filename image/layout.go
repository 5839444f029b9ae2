package image

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// Bounds on the JSON side of a layout.
const (
	maxJSONSize   = 4 << 20  // index.json, manifest.json, manifests, indexes, configs
	maxJSONTotal  = 64 << 20 // all the distinct JSON blobs one Open reads
	maxIndexDepth = 8        // image indexes nested in image indexes
)

// Media types of the documents this package resolves.
const (
	mediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	mediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	mediaTypeDockerConfig       = "application/vnd.docker.container.image.v1+json"
	mediaTypeDockerSchema1      = "application/vnd.docker.distribution.manifest.v1+json"
	mediaTypeDockerSchema1JWS   = "application/vnd.docker.distribution.manifest.v1+prettyjws"
)

// Annotations that name images in an index.json.
const (
	annotationContainerdName = "io.containerd.image.name"
)

type docKind int

const (
	kindUnknown docKind = iota
	kindManifest
	kindIndex
)

func kindOfMediaType(mt string) docKind {
	switch mt {
	case v1.MediaTypeImageManifest, mediaTypeDockerManifest:
		return kindManifest
	case v1.MediaTypeImageIndex, mediaTypeDockerManifestList:
		return kindIndex
	}
	return kindUnknown
}

// resolved is a manifest picked from a layout, read and verified.
type resolved struct {
	desc v1.Descriptor
	raw  []byte
	man  v1.Manifest
}

// opener carries the state of one Open or List call.
type opener struct {
	path     string
	st       store
	want     platform
	explicit bool // the platform was asked for, not the host default

	blobs     map[digest.Digest][]byte // JSON blobs read so far, verified
	blobBytes int64                    // their total size, bounded by maxJSONTotal
	resolved  map[resolveKey]resolution
}

// readMemberJSON reads a named file of the layout (not a blob).
func (o *opener) readMemberJSON(name string) ([]byte, error) {
	m, err := o.st.open(name)
	if err != nil {
		return nil, err
	}
	raw, err := readMember(m, maxJSONSize)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return raw, nil
}

// readBlob reads the JSON blob d names, checking its size and digest.
func (o *opener) readBlob(d v1.Descriptor, what string) ([]byte, error) {
	dg, err := parseDigest(string(d.Digest))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if d.Size < 0 || d.Size > maxJSONSize {
		return nil, errorf(ErrInvalid, "%s %s: size %d out of range (at most %d)", what, dg, d.Size, maxJSONSize)
	}
	if raw, ok := o.blobs[dg]; ok {
		if int64(len(raw)) != d.Size {
			return nil, &DigestError{Path: o.path, Object: what + " " + string(dg), Want: dg, WantSize: d.Size, GotSize: int64(len(raw))}
		}
		return raw, nil
	}
	if o.blobBytes += d.Size; o.blobBytes > maxJSONTotal {
		return nil, errorf(ErrInvalid, "%s %s: more than %d bytes of manifests, indexes and configs", what, dg, maxJSONTotal)
	}
	object := what + " " + string(dg)
	var raw []byte
	if len(d.Data) > 0 {
		raw = d.Data // embedded in the descriptor; verified all the same
	} else {
		m, err := o.st.open(blobName(dg))
		if err != nil {
			return nil, fmt.Errorf("%s: blob %w", object, err)
		}
		if m.size != d.Size {
			return nil, &DigestError{Path: o.path, Object: object, Want: dg, WantSize: d.Size, GotSize: m.size}
		}
		if raw, err = readMember(m, maxJSONSize); err != nil {
			return nil, fmt.Errorf("%s: %w", object, err)
		}
	}
	if int64(len(raw)) != d.Size {
		return nil, &DigestError{Path: o.path, Object: object, Want: dg, WantSize: d.Size, GotSize: int64(len(raw))}
	}
	if got := digestOf(dg, raw); got != dg {
		return nil, &DigestError{Path: o.path, Object: object, Want: dg, Got: got, WantSize: d.Size, GotSize: d.Size}
	}
	if o.blobs == nil {
		o.blobs = make(map[digest.Digest][]byte)
	}
	o.blobs[dg] = raw
	return raw, nil
}

// decodeJSON parses a document, naming it in the error.
func decodeJSON(raw []byte, v any, what string) error {
	if err := json.Unmarshal(raw, v); err != nil {
		return errorf(ErrInvalid, "%s: invalid JSON: %s", what, strings.TrimPrefix(err.Error(), "json: "))
	}
	return nil
}

// checkLayoutFile checks the oci-layout marker file.
func (o *opener) checkLayoutFile() error {
	raw, err := o.readMemberJSON(v1.ImageLayoutFile)
	if err != nil {
		return err
	}
	var l v1.ImageLayout
	if err := decodeJSON(raw, &l, v1.ImageLayoutFile); err != nil {
		return err
	}
	if l.Version == "" {
		return errorf(ErrInvalid, "%s: no imageLayoutVersion", v1.ImageLayoutFile)
	}
	// Minor versions may only add; accept any 1.x.
	if !strings.HasPrefix(l.Version, "1.") {
		return errorf(ErrUnsupported, "%s: imageLayoutVersion %.40q, want %s", v1.ImageLayoutFile, l.Version, v1.ImageLayoutVersion)
	}
	return nil
}

// layoutChoices reads index.json and resolves each of its entries for the
// wanted platform. Attestations are left out. Entry errors are kept on the
// choice, so a broken image does not hide a good one picked by ref.
func (o *opener) layoutChoices() ([]*choice, error) {
	if err := o.checkLayoutFile(); err != nil {
		return nil, err
	}
	raw, err := o.readMemberJSON(v1.ImageIndexFile)
	if err != nil {
		return nil, err
	}
	var idx v1.Index
	if err := decodeJSON(raw, &idx, v1.ImageIndexFile); err != nil {
		return nil, err
	}
	tags := o.dockerTags()
	var cs []*choice
	for i := range idx.Manifests {
		top := idx.Manifests[i]
		if isAttestation(&top) {
			continue
		}
		cs = append(cs, o.resolveTop(top, i, tags))
	}
	if len(cs) == 0 {
		return nil, errorf(ErrNotFound, "%s lists no images (empty layout)", v1.ImageIndexFile)
	}
	return cs, nil
}

// topNames returns the names an index.json entry carries, preferred first.
func topNames(d *v1.Descriptor) []string {
	return dedupe([]string{d.Annotations[annotationContainerdName], d.Annotations[v1.AnnotationRefName]})
}

func (o *opener) resolveTop(top v1.Descriptor, i int, tags map[digest.Digest][]string) *choice {
	pos := fmt.Sprintf("%s#%d", v1.ImageIndexFile, i)
	c := &choice{key: pos, names: topNames(&top)}
	what := fmt.Sprintf("%s entry %d", v1.ImageIndexFile, i)
	if _, err := parseDigest(string(top.Digest)); err != nil {
		c.aliases = []string{pos}
		c.err = fmt.Errorf("%s: %w", what, err)
		return c
	}
	c.key = string(top.Digest)
	c.aliases = []string{string(top.Digest)}
	if top.Platform != nil {
		if have := platformOf(top.Platform); o.want.rank(have) == 0 {
			c.miss = "has " + have.String()
			return c
		}
	}
	r, miss, err := o.resolve(top, what, 0)
	switch {
	case err != nil:
		c.err = err
	case miss != "":
		c.miss = miss
	default:
		c.manifest = r
		c.key = string(r.desc.Digest)
		c.aliases = dedupe(append(c.aliases, string(r.desc.Digest)))
		c.config = r.man.Config.Digest
		c.tags = tags[c.config]
	}
	return c
}

// probe holds the fields that tell a manifest from an index.
type probe struct {
	SchemaVersion int             `json:"schemaVersion"`
	MediaType     string          `json:"mediaType"`
	Manifests     json.RawMessage `json:"manifests"`
	Config        json.RawMessage `json:"config"`
	Layers        json.RawMessage `json:"layers"`
	FSLayers      json.RawMessage `json:"fsLayers"`
}

// documentKind decides what a blob is from its descriptor and its content.
func documentKind(declared string, raw []byte, what string) (docKind, error) {
	var p probe
	if err := decodeJSON(raw, &p, what); err != nil {
		return kindUnknown, err
	}
	if p.SchemaVersion == 1 || p.FSLayers != nil || declared == mediaTypeDockerSchema1 || declared == mediaTypeDockerSchema1JWS {
		return kindUnknown, errorf(ErrUnsupported, "%s: docker schema 1 manifest (pull and save the image with a current docker)", what)
	}
	if p.SchemaVersion != 0 && p.SchemaVersion != 2 {
		return kindUnknown, errorf(ErrUnsupported, "%s: schemaVersion %d, want 2", what, p.SchemaVersion)
	}
	mt := declared
	if mt == "" {
		mt = p.MediaType
	}
	if mt == "" {
		switch {
		case p.Manifests != nil:
			return kindIndex, nil
		case p.Config != nil || p.Layers != nil:
			return kindManifest, nil
		}
		return kindUnknown, errorf(ErrUnsupported, "%s: neither a manifest nor an index (no media type)", what)
	}
	k := kindOfMediaType(mt)
	if k == kindUnknown {
		return k, errorf(ErrUnsupported, "%s: unsupported media type %.100q", what, mt)
	}
	if p.MediaType != "" && kindOfMediaType(p.MediaType) != k {
		return k, errorf(ErrInvalid, "%s: descriptor says %.100q, document says %.100q", what, mt, p.MediaType)
	}
	return k, nil
}

// resolution is the memoised outcome of resolve for one digest and depth.
type resolution struct {
	r    *resolved
	miss string
	err  error
}

type resolveKey struct {
	d         digest.Digest
	size      int64
	mediaType string
	depth     int
}

// resolve follows d down nested indexes to one manifest for the wanted
// platform. It returns a non-empty miss, and no error, when nothing fits.
// Outcomes are memoised: indexes may share children (many entries naming
// one index), and without it a hostile DAG of them costs fan-out to the
// power of the depth.
func (o *opener) resolve(d v1.Descriptor, what string, depth int) (*resolved, string, error) {
	key := resolveKey{d.Digest, d.Size, d.MediaType, depth}
	if res, ok := o.resolved[key]; ok {
		return res.r, res.miss, res.err
	}
	r, miss, err := o.resolveOnce(d, what, depth)
	if o.resolved == nil {
		o.resolved = make(map[resolveKey]resolution)
	}
	o.resolved[key] = resolution{r, miss, err}
	return r, miss, err
}

func (o *opener) resolveOnce(d v1.Descriptor, what string, depth int) (*resolved, string, error) {
	raw, err := o.readBlob(d, what)
	if err != nil {
		return nil, "", err
	}
	what = fmt.Sprintf("%s %s", what, d.Digest)
	k, err := documentKind(d.MediaType, raw, what)
	if err != nil {
		return nil, "", err
	}
	if k == kindManifest {
		r := &resolved{desc: d, raw: raw}
		if err := decodeJSON(raw, &r.man, what); err != nil {
			return nil, "", err
		}
		return r, "", nil
	}
	if depth >= maxIndexDepth {
		return nil, "", errorf(ErrInvalid, "%s: image indexes nested more than %d deep", what, maxIndexDepth)
	}
	var idx v1.Index
	if err := decodeJSON(raw, &idx, what); err != nil {
		return nil, "", err
	}
	type entry struct {
		i    int
		rank int
	}
	var fits []entry
	var seen []string
	for i := range idx.Manifests {
		e := &idx.Manifests[i]
		if isAttestation(e) {
			continue
		}
		if e.MediaType != "" && kindOfMediaType(e.MediaType) == kindUnknown {
			continue // artifacts, signatures: not images
		}
		rank := 1 // an entry without a platform fits any, after those that say so
		if e.Platform != nil {
			have := platformOf(e.Platform)
			if rank = o.want.rank(have); rank == 0 {
				seen = append(seen, have.String())
				continue
			}
		}
		fits = append(fits, entry{i, rank})
	}
	slices.SortStableFunc(fits, func(a, b entry) int { return b.rank - a.rank })
	var misses []string
	for _, f := range fits {
		r, miss, err := o.resolve(idx.Manifests[f.i], fmt.Sprintf("%s entry %d", what, f.i), depth+1)
		if err != nil {
			return nil, "", err
		}
		if miss == "" {
			return r, "", nil
		}
		misses = append(misses, miss)
	}
	if len(seen) == 0 && len(misses) == 0 {
		return nil, "has no images", nil
	}
	miss := "has " + listed(dedupe(seen))
	if len(seen) == 0 {
		miss = listedSep(misses, "; ")
	}
	return nil, miss, nil
}

// dockerEntries reads a manifest.json next to index.json (docker 25 and
// later write both), best effort: the index is what is read, the entries
// only add names.
func (o *opener) dockerEntries() []dockerEntry {
	raw, err := o.readMemberJSON(dockerManifestFile)
	if err != nil {
		return nil
	}
	var entries []dockerEntry
	if json.Unmarshal(raw, &entries) != nil {
		return nil
	}
	return entries
}

// dockerTags maps config digests to the RepoTags of dockerEntries.
func (o *opener) dockerTags() map[digest.Digest][]string {
	tags := make(map[digest.Digest][]string)
	for _, e := range o.dockerEntries() {
		if d, ok := dockerConfigDigest(e.Config); ok {
			tags[d] = append(tags[d], e.RepoTags...)
		}
	}
	for d, t := range tags {
		tags[d] = dedupe(t)
	}
	return tags
}

// openLayout builds the image an OCI layout holds.
func (o *opener) openLayout(ref string) (*Image, error) {
	cs, err := o.layoutChoices()
	if err != nil {
		return nil, err
	}
	c, name, err := pick(o.path, cs, ref, o.want)
	if err != nil {
		return nil, err
	}
	return o.imageOf(c.manifest, name)
}

// imageOf builds the image of a resolved manifest: it reads and checks the config and the
// layer descriptors.
func (o *opener) imageOf(r *resolved, name string) (*Image, error) {
	what := "manifest " + string(r.desc.Digest)
	cd := r.man.Config
	switch cd.MediaType {
	case "", v1.MediaTypeImageConfig, mediaTypeDockerConfig:
	default:
		return nil, errorf(ErrUnsupported, "%s: config media type %.100q: not a container image", what, cd.MediaType)
	}
	cfgRaw, err := o.readBlob(cd, what+": config")
	if err != nil {
		return nil, err
	}
	im := &Image{Path: o.path, ID: string(sha256Of(r.raw)), Ref: name}
	for i, ld := range r.man.Layers {
		lw := fmt.Sprintf("%s: layer %d", what, i)
		d, err := parseDigest(string(ld.Digest))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", lw, err)
		}
		if ld.Size < 0 {
			return nil, errorf(ErrInvalid, "%s: negative size %d", lw, ld.Size)
		}
		im.Layers = append(im.Layers, Layer{Digest: d, MediaType: ld.MediaType, Size: ld.Size})
		im.members = append(im.members, blobName(d))
		im.urls = append(im.urls, len(ld.URLs) > 0)
	}
	if err := o.applyConfig(im, cfgRaw, what+": config "+string(cd.Digest)); err != nil {
		return nil, err
	}
	return im, nil
}
