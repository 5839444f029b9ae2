package verify

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Options relaxes Compare. The zero value compares every field.
type Options struct {
	// IgnoreMtime skips modification times of every entry.
	IgnoreMtime bool
	// IgnoreOwnership skips uid and gid.
	IgnoreOwnership bool
	// IgnoreDirMtime skips modification times of directories only.
	IgnoreDirMtime bool
	// IgnoreRoot skips the root entry (Path "") entirely.
	IgnoreRoot bool
	// IgnoreXattrs, when set, reports whether the xattr name is skipped on
	// both sides.
	IgnoreXattrs func(name string) bool
}

// Difference is one disagreement between two trees.
type Difference struct {
	Path string
	// Kind is '+' for a path only in got, '-' for a path only in want and
	// '~' for a field that differs.
	Kind byte
	// Field names what differs for Kind '~': "type", "mode", "uid", "gid",
	// "size", "digest", "link", "devmajor", "devminor", "xattr NAME",
	// "mtime" or "hardlink". It is "" for '+' and '-'.
	Field string
	// Want and Got are the two values, formatted for humans. For '-' and
	// '+' the present side holds a summary of the entry.
	Want, Got string
}

func (d Difference) String() string {
	p := strconv.Quote(d.Path)
	if d.Path == "" {
		p = "(root)"
	}
	switch d.Kind {
	case '-':
		return fmt.Sprintf("- %s: missing (want %s)", p, d.Want)
	case '+':
		return fmt.Sprintf("+ %s: unexpected (got %s)", p, d.Got)
	}
	return fmt.Sprintf("~ %s: %s: want %s, got %s", p, d.Field, d.Want, d.Got)
}

// Compare reports how got differs from want. Both lists must be sorted by
// Path, as ScanDir returns them. Differences come in path order and, for
// one path, in the field order listed on Difference.Field. When the types
// differ only the type is reported.
func Compare(want, got []Entry, opts Options) []Difference {
	var diffs []Difference
	i, j := 0, 0
	for i < len(want) || j < len(got) {
		switch {
		case j == len(got) || (i < len(want) && want[i].Path < got[j].Path):
			if !(opts.IgnoreRoot && want[i].Path == "") {
				diffs = append(diffs, Difference{Path: want[i].Path, Kind: '-', Want: want[i].summary()})
			}
			i++
		case i == len(want) || got[j].Path < want[i].Path:
			if !(opts.IgnoreRoot && got[j].Path == "") {
				diffs = append(diffs, Difference{Path: got[j].Path, Kind: '+', Got: got[j].summary()})
			}
			j++
		default:
			if !(opts.IgnoreRoot && want[i].Path == "") {
				diffs = compareEntry(diffs, &want[i], &got[j], &opts)
			}
			i++
			j++
		}
	}
	return diffs
}

func compareEntry(diffs []Difference, w, g *Entry, opts *Options) []Difference {
	add := func(field, want, got string) {
		diffs = append(diffs, Difference{Path: w.Path, Kind: '~', Field: field, Want: want, Got: got})
	}
	if w.Type != g.Type {
		add("type", w.summary(), g.summary())
		return diffs
	}
	if w.Mode != g.Mode {
		add("mode", fmt.Sprintf("%04o", w.Mode), fmt.Sprintf("%04o", g.Mode))
	}
	if !opts.IgnoreOwnership {
		if w.UID != g.UID {
			add("uid", fmt.Sprint(w.UID), fmt.Sprint(g.UID))
		}
		if w.GID != g.GID {
			add("gid", fmt.Sprint(w.GID), fmt.Sprint(g.GID))
		}
	}
	if w.Size != g.Size {
		add("size", fmt.Sprint(w.Size), fmt.Sprint(g.Size))
	}
	if w.Digest != g.Digest {
		add("digest", w.Digest, g.Digest)
	}
	if w.Link != g.Link {
		add("link", strconv.Quote(w.Link), strconv.Quote(g.Link))
	}
	if w.Devmajor != g.Devmajor {
		add("devmajor", fmt.Sprint(w.Devmajor), fmt.Sprint(g.Devmajor))
	}
	if w.Devminor != g.Devminor {
		add("devminor", fmt.Sprint(w.Devminor), fmt.Sprint(g.Devminor))
	}
	for _, name := range xattrNames(w.Xattrs, g.Xattrs) {
		if opts.IgnoreXattrs != nil && opts.IgnoreXattrs(name) {
			continue
		}
		wv, wok := w.Xattrs[name]
		gv, gok := g.Xattrs[name]
		if wok != gok || wv != gv {
			add("xattr "+name, xattrValue(wv, wok), xattrValue(gv, gok))
		}
	}
	ignoreMtime := opts.IgnoreMtime || (opts.IgnoreDirMtime && w.Type == Dir)
	if !ignoreMtime && w.MtimeNs != g.MtimeNs {
		add("mtime", formatNs(w.MtimeNs), formatNs(g.MtimeNs))
	}
	if w.Inode != g.Inode {
		add("hardlink", linkGroup(w.Inode), linkGroup(g.Inode))
	}
	return diffs
}

func xattrNames(a, b map[string]string) []string {
	var names []string
	for k := range a {
		names = append(names, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	return names
}

func xattrValue(v string, ok bool) string {
	if !ok {
		return "(absent)"
	}
	return strconv.Quote(v)
}

func formatNs(ns int64) string {
	return fmt.Sprintf("%d (%s)", ns, time.Unix(0, ns).UTC().Format(time.RFC3339Nano))
}

func linkGroup(key string) string {
	if key == "" {
		return "(single name)"
	}
	return "group of " + strconv.Quote(key)
}

// Summary counts differences.
type Summary struct {
	Missing int // paths only in want
	Extra   int // paths only in got
	Changed int // paths in both with at least one field that differs
	// Fields counts the differing fields by name ("mode", "digest", "xattr" for every xattr
	// name, ...).
	Fields map[string]int
}

// Summarize counts diffs, as Compare returns them.
func Summarize(diffs []Difference) Summary {
	s := Summary{Fields: map[string]int{}}
	last := ""
	for i, d := range diffs {
		switch d.Kind {
		case '-':
			s.Missing++
		case '+':
			s.Extra++
		case '~':
			if i == 0 || d.Path != last || diffs[i-1].Kind != '~' {
				s.Changed++
			}
			field := d.Field
			if strings.HasPrefix(field, "xattr ") {
				field = "xattr"
			}
			s.Fields[field]++
		}
		last = d.Path
	}
	return s
}
