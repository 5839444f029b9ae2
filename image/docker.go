package image

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
)

// dockerManifestFile lists the images of a `docker save` layout.
const dockerManifestFile = "manifest.json"

// dockerEntry is one image of a docker save manifest.json. Paths are
// relative to the layout root: legacy saves use "<hex>.json" configs and
// "<id>/layer.tar" layers, docker 25 and later "blobs/sha256/<hex>" for both.
type dockerEntry struct {
	Config   string   `json:"Config"`
	RepoTags []string `json:"RepoTags"`
	Layers   []string `json:"Layers"`
}

// dockerConfigDigest returns the digest a manifest.json Config path names:
// "blobs/<alg>/<hex>", or the legacy "<hex>.json" whose hex is the sha256 of
// the config (docker's image ID).
func dockerConfigDigest(p string) (digest.Digest, bool) {
	name, err := cleanName(p)
	if err != nil {
		return "", false
	}
	if d, ok := digestOfBlobName(name); ok {
		return d, true
	}
	if hexPart, ok := strings.CutSuffix(name, ".json"); ok {
		if d, err := parseDigest("sha256:" + hexPart); err == nil {
			return d, true
		}
	}
	return "", false
}

// dockerChoices reads manifest.json: one choice per entry.
func (o *opener) dockerChoices() ([]*choice, error) {
	raw, err := o.readMemberJSON(dockerManifestFile)
	if err != nil {
		return nil, err
	}
	var entries []dockerEntry
	if err := decodeJSON(raw, &entries, dockerManifestFile); err != nil {
		return nil, err
	}
	if len(entries) == 0 {
		return nil, errorf(ErrNotFound, "%s lists no images (empty layout)", dockerManifestFile)
	}
	cs := make([]*choice, len(entries))
	for i := range entries {
		e := &entries[i]
		c := &choice{key: dockerEntryKey(e), names: dedupe(slices.Clone(e.RepoTags)), entry: e}
		if d, ok := dockerConfigDigest(e.Config); ok {
			c.aliases = []string{string(d)}
		} else {
			c.aliases = []string{fmt.Sprintf("%s#%d", dockerManifestFile, i)}
		}
		cs[i] = c
	}
	return cs, nil
}

// dockerEntryKey identifies an entry by its content paths, not its tags.
func dockerEntryKey(e *dockerEntry) string {
	var b strings.Builder
	b.WriteString("config ")
	b.WriteString(e.Config)
	for _, l := range e.Layers {
		b.WriteString("\nlayer ")
		b.WriteString(l)
	}
	return b.String()
}

// openDocker builds the image a docker save manifest.json holds.
//
// A layer named "blobs/<alg>/<hex>" gets that digest. A legacy layer
// ("<id>/layer.tar") has no digest of its own: when its first bytes show no
// compression it is the uncompressed tar, whose digest is by definition its
// DiffID, so Digest is set to the DiffID and OpenLayer verifies it;
// otherwise Digest stays "" and only its size is checked here (the layer
// package can still check the DiffID of what it decompresses). Sizes are
// those of the files: manifest.json has no descriptors.
func (o *opener) openDocker(ref string) (*Image, error) {
	cs, err := o.dockerChoices()
	if err != nil {
		return nil, err
	}
	c, name, err := pick(o.path, cs, ref, o.want)
	if err != nil {
		return nil, err
	}
	e := c.entry
	cfgName, err := cleanName(e.Config)
	if err != nil {
		return nil, fmt.Errorf("%s: Config: %w", dockerManifestFile, err)
	}
	what := "config " + cfgName
	cfgRaw, err := o.readMemberJSON(cfgName)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dockerManifestFile, err)
	}
	cfgDigest := sha256Of(cfgRaw)
	if want, ok := dockerConfigDigest(cfgName); ok {
		if got := digestOf(want, cfgRaw); got != want {
			n := int64(len(cfgRaw))
			return nil, &DigestError{Path: o.path, Object: what, Want: want, Got: got, WantSize: n, GotSize: n}
		}
		cfgDigest = want
	}

	h := sha256.New()
	fmt.Fprintf(h, "docker-save\nconfig %s\n", cfgDigest)
	im := &Image{Path: o.path, Ref: name}
	var legacy []int // layers whose digest is the DiffID, if uncompressed
	for i, lp := range e.Layers {
		ln, err := cleanName(lp)
		if err != nil {
			return nil, fmt.Errorf("%s: layer %d: %w", dockerManifestFile, i, err)
		}
		fmt.Fprintf(h, "layer %s\n", ln)
		m, err := o.st.open(ln)
		if err != nil {
			return nil, fmt.Errorf("layer %d: %w", i, err)
		}
		l := Layer{Size: m.size}
		if d, ok := digestOfBlobName(ln); ok {
			l.Digest = d
		} else {
			head := make([]byte, 8)
			n, err := m.readAt(head, 0)
			if err != nil && err != io.EOF {
				return nil, fmt.Errorf("layer %d: %s: %w", i, ln, err)
			}
			if compression(head[:n]) == "" {
				legacy = append(legacy, i)
			}
		}
		im.Layers = append(im.Layers, l)
		im.members = append(im.members, ln)
		im.urls = append(im.urls, false)
	}
	im.ID = "sha256:" + hex.EncodeToString(h.Sum(nil))
	if err := o.applyConfig(im, cfgRaw, what); err != nil {
		return nil, err
	}
	for _, i := range legacy {
		im.Layers[i].Digest = im.Layers[i].DiffID
	}
	return im, nil
}
