package image

import (
	"fmt"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
)

// A choice is one image a layout offers: a top-level index.json entry
// resolved for the wanted platform, or one manifest.json entry.
//
// Docker RepoTags that name an index.json entry through its config are kept
// apart from its own names: tags is shared by every choice with that
// config and is never copied, so a hostile layout with many entries and
// many tags costs their sum, not their product.
type choice struct {
	key     string        // identity: choices with the same key are the same image
	names   []string      // its own references (annotations, or RepoTags of a manifest.json entry)
	config  digest.Digest // config digest, when tags apply
	tags    []string      // shared, read-only: RepoTags of config; they name it before names do
	aliases []string      // digests that select it with Options.Ref but are not names
	miss    string        // set when it has nothing for the wanted platform: what it has
	err     error         // set when resolving it failed; reported only if it is picked

	manifest *resolved    // OCI layouts
	entry    *dockerEntry // docker save manifest.json
}

// firstName is the preferred name of a choice, or "".
func (c *choice) firstName() string {
	if len(c.tags) > 0 {
		return c.tags[0]
	}
	if len(c.names) > 0 {
		return c.names[0]
	}
	return ""
}

// label is how a choice is shown in lists: its first name, else its digest.
func (c *choice) label() string {
	if n := c.firstName(); n != "" {
		return n
	}
	if len(c.aliases) > 0 {
		return c.aliases[0]
	}
	return c.key
}

// groupChoices merges choices with the same key, keeping first-seen order.
func groupChoices(cs []*choice) []*choice {
	var out []*choice
	byKey := make(map[string]*choice)
	for _, c := range cs {
		g, ok := byKey[c.key]
		if !ok {
			g = &choice{key: c.key, config: c.config, tags: c.tags, miss: c.miss, err: c.err, manifest: c.manifest, entry: c.entry}
			byKey[c.key] = g
			out = append(out, g)
		}
		g.names = append(g.names, c.names...)
		g.aliases = append(g.aliases, c.aliases...)
	}
	for _, g := range out {
		g.names = dedupe(g.names)
		g.aliases = dedupe(g.aliases)
	}
	return out
}

// dedupe drops empty and repeated strings, keeping first-seen order.
func dedupe(list []string) []string {
	seen := make(map[string]bool, len(list))
	out := list[:0:0]
	for _, s := range list {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// pick chooses the image the options ask for and the name that chose it.
// With a ref, names are tried exactly, then normalised (a docker.io/library/
// prefix and a missing :latest tag do not matter), then as a bare tag. A
// level that matches several images is ambiguous. Without a ref the layout
// must hold exactly one image for the platform.
func pick(path string, cs []*choice, ref string, want platform) (*choice, string, error) {
	groups := groupChoices(cs)
	if ref != "" {
		c, name, err := pickByRef(groups, ref)
		if err != nil {
			return nil, "", err
		}
		if c.miss != "" {
			return nil, "", errorf(ErrNotFound, "image %q has no manifest for platform %s (%s); pick one with --platform", ref, want, c.miss)
		}
		if c.err != nil {
			return nil, "", c.err
		}
		if name == "" {
			name = c.firstName()
		}
		return c, name, nil
	}
	var live []*choice
	var misses []string
	for _, g := range groups {
		if g.miss != "" {
			misses = append(misses, g.label()+": "+g.miss)
			continue
		}
		live = append(live, g)
	}
	switch len(live) {
	case 0:
		return nil, "", errorf(ErrNotFound, "no manifest for platform %s (%s); pick one with --platform", want, listedSep(misses, "; "))
	case 1:
		c := live[0]
		if c.err != nil {
			return nil, "", c.err
		}
		return c, c.firstName(), nil
	}
	labels := make([]string, len(live))
	for i, g := range live {
		labels[i] = g.label()
	}
	return nil, "", &kindError{kind: ErrAmbiguous, whole: true, msg: fmt.Sprintf("image: %s holds %d images, pick one with --ref: %s", path, len(live), listed(labels))}
}

func pickByRef(groups []*choice, ref string) (*choice, string, error) {
	normRef := normalizeRef(ref)
	levels := []func(name string) bool{
		func(name string) bool { return name == ref },
		func(name string) bool { return normalizeRef(name) == normRef },
	}
	if !strings.ContainsAny(ref, ":/@") {
		levels = append(levels, func(name string) bool { return tagOf(name) == ref })
	}
	for lvl, match := range levels {
		var found []*choice
		var names []string
		tagHit := make(map[digest.Digest]string) // per config: the tag that matched, "" for none
		for _, g := range groups {
			hit, ok := "", false
			if g.config != "" && len(g.tags) > 0 {
				t, done := tagHit[g.config]
				if !done {
					if i := slices.IndexFunc(g.tags, match); i >= 0 {
						t = g.tags[i]
					}
					tagHit[g.config] = t
				}
				hit, ok = t, t != ""
			}
			if !ok {
				if i := slices.IndexFunc(g.names, match); i >= 0 {
					hit, ok = g.names[i], true
				}
			}
			if !ok && lvl == 0 && slices.Contains(g.aliases, ref) {
				ok = true
			}
			if ok {
				found = append(found, g)
				names = append(names, hit)
			}
		}
		switch len(found) {
		case 0:
			continue
		case 1:
			return found[0], names[0], nil
		}
		labels := make([]string, len(found))
		for i, g := range found {
			labels[i] = g.label()
		}
		return nil, "", errorf(ErrAmbiguous, "ref %q matches %d images: %s", ref, len(found), listed(labels))
	}
	var all []string
	for _, g := range groups {
		all = append(all, g.label())
	}
	return nil, "", errorf(ErrNotFound, "no image named %q; it has: %s", ref, listed(all))
}

// listed joins names for a one-line message, eliding past a couple dozen
// and shortening long ones.
func listed(names []string) string { return listedSep(names, ", ") }

func listedSep(names []string, sep string) string {
	const max, maxLen = 24, 120
	if len(names) == 0 {
		return "(none)"
	}
	more := ""
	if len(names) > max {
		names, more = names[:max], fmt.Sprintf(" and %d more", len(names)-max)
	}
	short := make([]string, len(names))
	for i, n := range names {
		if len(n) > maxLen {
			n = strings.ToValidUTF8(n[:maxLen], "") + "..."
		}
		short[i] = n
	}
	return strings.Join(short, sep) + more
}

// distinctNames lists a group's names for List, dropping those that repeat
// an earlier one: the same reference spelt longer, or a bare tag of it.
// Tags of a config already listed (listedConfigs) are not listed again.
func distinctNames(g *choice, listedConfigs map[digest.Digest]bool) []string {
	names := g.names
	if g.config != "" && len(g.tags) > 0 && !listedConfigs[g.config] {
		listedConfigs[g.config] = true
		names = append(slices.Clip(g.tags), g.names...)
	}
	if len(names) == 0 {
		if len(g.tags) > 0 {
			return nil // named by tags listed with another image
		}
		return []string{g.label()}
	}
	var out []string
	norms := make(map[string]bool)
	tags := make(map[string]bool)
	for _, n := range names {
		norm := normalizeRef(n)
		if norms[norm] || !strings.ContainsAny(n, ":/@") && tags[n] {
			continue
		}
		norms[norm] = true
		tags[tagOf(n)] = true
		out = append(out, n)
	}
	return out
}

// normalizeRef folds the spellings docker treats as one: a missing tag is
// ":latest", and the docker.io registry and its library/ namespace are
// implied.
func normalizeRef(s string) string {
	if !strings.Contains(s, "@") && !strings.Contains(s[strings.LastIndexByte(s, '/')+1:], ":") {
		s += ":latest"
	}
	for _, p := range []string{"index.docker.io/", "docker.io/"} {
		if rest, ok := strings.CutPrefix(s, p); ok {
			s = rest
			break
		}
	}
	if rest, ok := strings.CutPrefix(s, "library/"); ok && !strings.Contains(rest, "/") {
		s = rest
	}
	return s
}

// tagOf returns the tag of a reference ("1.36" of "busybox:1.36"), or the
// whole string for a bare tag such as an OCI ref.name of "latest".
func tagOf(s string) string {
	if i := strings.IndexByte(s, '@'); i >= 0 {
		s = s[:i]
	}
	last := s[strings.LastIndexByte(s, '/')+1:]
	if i := strings.LastIndexByte(last, ':'); i >= 0 {
		return last[i+1:]
	}
	if strings.Contains(s, "/") {
		return ""
	}
	return s
}
