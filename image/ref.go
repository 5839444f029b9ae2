package image

import (
	"fmt"
	"slices"
	"strings"
)

// A choice is one image a layout offers: a top-level index.json entry
// resolved for the wanted platform, or one manifest.json entry.
type choice struct {
	key     string   // identity: choices with the same key are the same image
	names   []string // references naming it, the preferred one first
	aliases []string // digests that select it with Options.Ref but are not names
	miss    string   // set when it has nothing for the wanted platform: what it has
	err     error    // set when resolving it failed; reported only if it is picked

	manifest *resolved    // OCI layouts
	entry    *dockerEntry // docker save manifest.json
}

// label is how a choice is shown in lists: its first name, else its digest.
func (c *choice) label() string {
	if len(c.names) > 0 {
		return c.names[0]
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
			g = &choice{key: c.key, miss: c.miss, err: c.err, manifest: c.manifest, entry: c.entry}
			byKey[c.key] = g
			out = append(out, g)
		}
		g.names = appendNew(g.names, c.names...)
		g.aliases = appendNew(g.aliases, c.aliases...)
	}
	return out
}

func appendNew(list []string, add ...string) []string {
outer:
	for _, a := range add {
		if a == "" {
			continue
		}
		for _, have := range list {
			if have == a {
				continue outer
			}
		}
		list = append(list, a)
	}
	return list
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
		if name == "" && len(c.names) > 0 {
			name = c.names[0]
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
		return nil, "", errorf(ErrNotFound, "no manifest for platform %s (%s); pick one with --platform", want, strings.Join(misses, "; "))
	case 1:
		c := live[0]
		if c.err != nil {
			return nil, "", c.err
		}
		name := ""
		if len(c.names) > 0 {
			name = c.names[0]
		}
		return c, name, nil
	}
	labels := make([]string, len(live))
	for i, g := range live {
		labels[i] = g.label()
	}
	return nil, "", &kindError{kind: ErrAmbiguous, whole: true, msg: fmt.Sprintf("image: %s holds %d images, pick one with --ref: %s", path, len(live), listed(labels))}
}

func pickByRef(groups []*choice, ref string) (*choice, string, error) {
	levels := []func(name string) bool{
		func(name string) bool { return name == ref },
		func(name string) bool { return normalizeRef(name) == normalizeRef(ref) },
	}
	if !strings.ContainsAny(ref, ":/@") {
		levels = append(levels, func(name string) bool { return tagOf(name) == ref })
	}
	for lvl, match := range levels {
		var found []*choice
		var names []string
		for _, g := range groups {
			hit, ok := "", false
			for _, n := range g.names {
				if match(n) {
					hit, ok = n, true
					break
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

// listed joins names for a one-line message, eliding past a couple dozen.
func listed(names []string) string {
	const max, maxLen = 24, 120
	if len(names) == 0 {
		return "(none)"
	}
	names = slices.Clone(names)
	for i, n := range names {
		if len(n) > maxLen {
			names[i] = n[:maxLen] + "..."
		}
	}
	if len(names) > max {
		return strings.Join(names[:max], ", ") + fmt.Sprintf(" and %d more", len(names)-max)
	}
	return strings.Join(names, ", ")
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
