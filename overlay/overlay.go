// Package overlay applies OCI layer changesets, oldest first, to an in-memory tree and freezes
// the result into an index.Index.
//
// It owns the rules of the OCI image spec's "Applying Changesets" as DESIGN.md §3 states them:
// name cleaning and escape checks, chroot-style resolution of symlinked parents, implicit
// parents, whiteouts (which only ever hide lower layers, whatever their position in their own
// layer), opaque directories, replacement of one file type by another, last-one-wins duplicates,
// and hard links that bind to the inode their target names when the link is applied.
//
// A layer is first read into a list of Changes (ReadChanges, which only parses tar headers and
// records where each file's data starts), then applied with Merger.Apply. Layers can be read in
// parallel; they must be applied in order. Overlay knows nothing of compression, output
// formats or FUSE.
package overlay

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/ocirender/ocirender/index"
)

// Whiteout names of the OCI layer format.
const (
	WhiteoutPrefix = ".wh."
	WhiteoutOpaque = ".wh..wh..opq"
	whiteoutMeta   = ".wh..wh." // AUFS metadata: .wh..wh.aufs, .wh..wh.orph/, .wh..wh.plnk/
)

// Errors callers may test for with errors.Is.
var (
	ErrEscape       = errors.New("path escapes the image root")
	ErrLoop         = errors.New("too many levels of symbolic links")
	ErrNotDir       = errors.New("parent is not a directory")
	ErrLinkTarget   = errors.New("hard link target")
	ErrBadWhiteout  = errors.New("bad whiteout")
	ErrRootNotDir   = errors.New("root entry is not a directory")
	ErrNameTooLong  = errors.New("name too long")
	ErrTooManyFiles = errors.New("too many entries")
)

const none = -1

type node struct {
	name   string
	parent int32
	first  int32 // newest child; siblings chain through next
	next   int32
	ino    int32
	layer  int32 // the layer that created this name or last set its metadata
	dead   bool
}

type childKey struct {
	parent int32
	name   string
}

// Merger holds the tree while layers are applied. The zero value is not usable; call New.
type Merger struct {
	nodes      []node
	inodes     []index.Inode
	children   map[childKey]int32
	live       int
	maxEntries int
	layer      int32 // the layer being applied: one more per Apply
}

// Options tune a Merger. The zero value uses the defaults.
type Options struct {
	MaxEntries int // live entries of the merged tree; default DefaultMaxEntries
}

// New returns a Merger holding an empty root directory (0755, owned by 0:0).
func New(opts Options) *Merger {
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = DefaultMaxEntries
	}
	m := &Merger{children: map[childKey]int32{}, maxEntries: opts.MaxEntries}
	m.inodes = append(m.inodes, index.Inode{Type: index.Dir, Mode: 0o755, Layer: index.NoLayer})
	m.nodes = append(m.nodes, node{parent: none, first: none, next: none, ino: 0, layer: -1})
	m.live = 1
	m.layer = -1
	return m
}

func (m *Merger) typeOf(n int32) index.Type { return m.inodes[m.nodes[n].ino].Type }

func (m *Merger) child(dir int32, name string) int32 {
	if c, ok := m.children[childKey{dir, name}]; ok {
		return c
	}
	return none
}

func (m *Merger) addNode(dir int32, name string, ino int32) (int32, error) {
	if m.live >= m.maxEntries {
		return none, fmt.Errorf("%w: more than %d", ErrTooManyFiles, m.maxEntries)
	}
	id := int32(len(m.nodes))
	m.nodes = append(m.nodes, node{name: name, parent: dir, first: none, next: m.nodes[dir].first, ino: ino, layer: m.layer})
	m.nodes[dir].first = id
	m.children[childKey{dir, name}] = id
	m.live++
	return id, nil
}

func (m *Merger) addInode(in index.Inode) int32 {
	m.inodes = append(m.inodes, in)
	return int32(len(m.inodes) - 1)
}

// remove deletes n and everything below it. Inodes stay: other names may still use them.
func (m *Merger) remove(n int32) {
	nd := &m.nodes[n]
	delete(m.children, childKey{nd.parent, nd.name})
	m.removeBelow(n)
	m.nodes[n].dead = true
	m.live--
}

// removeBelow deletes every child of n, recursively.
func (m *Merger) removeBelow(n int32) {
	for c := m.nodes[n].first; c != none; c = m.nodes[c].next {
		if m.nodes[c].dead {
			continue
		}
		delete(m.children, childKey{n, m.nodes[c].name})
		m.removeBelow(c)
		m.nodes[c].dead = true
		m.live--
	}
	m.nodes[n].first = none
}

// splitPath cleans a tar name into its components. An empty result is the root. A name that
// climbs above the root is an error, even if cleaning would hide it. Lengths are not checked
// here: they apply to the name an entry means (checkLengths), which for a whiteout is not its
// own.
func splitPath(name string) ([]string, error) {
	var parts []string
	for _, c := range strings.Split(name, "/") {
		switch c {
		case "", ".":
		case "..":
			if len(parts) == 0 {
				return nil, ErrEscape
			}
			parts = parts[:len(parts)-1]
		default:
			parts = append(parts, c)
		}
	}
	return parts, nil
}

// checkLengths applies the kernel's limits to a cleaned path: NAME_MAX bytes a component,
// PATH_MAX bytes in all. A whiteout is checked on the path it removes (".wh." + a 255-byte
// name is a 259-byte header name that every builder writes), an opaque marker on its
// directory.
func checkLengths(comps []string) error {
	n := len(comps) - 1 // the slashes
	for _, c := range comps {
		if len(c) > MaxNameLen {
			return fmt.Errorf("%w: component of %d bytes (at most %d)", ErrNameTooLong, len(c), MaxNameLen)
		}
		n += len(c)
	}
	if n > MaxPathLen {
		return fmt.Errorf("%w: path of %d bytes (at most %d)", ErrNameTooLong, n, MaxPathLen)
	}
	return nil
}

// walkDir follows comps from dir, resolving symlinks chroot-style, and returns the directory
// they name. Missing components are created as implicit directories when create is set, and
// reported as (none, nil) otherwise.
func (m *Merger) walkDir(dir int32, comps []string, create bool, mtime int64, hops *int) (int32, error) {
	cur := dir
	for _, c := range comps {
		switch c {
		case "", ".":
			continue
		case "..":
			if p := m.nodes[cur].parent; p != none {
				cur = p
			}
			continue
		}
		next := m.child(cur, c)
		if next == none {
			if !create {
				return none, nil
			}
			if strings.HasPrefix(c, WhiteoutPrefix) {
				return none, fmt.Errorf("%w: %q would become a directory", ErrBadWhiteout, c)
			}
			ino := m.addInode(index.Inode{Type: index.Dir, Mode: 0o755, Mtime: mtime, Layer: index.NoLayer})
			var err error
			if next, err = m.addNode(cur, c, ino); err != nil {
				return none, err
			}
		}
		switch m.typeOf(next) {
		case index.Dir:
			cur = next
		case index.Symlink:
			*hops++
			if *hops > index.MaxSymlinkHops {
				return none, ErrLoop
			}
			target := m.inodes[m.nodes[next].ino].Link
			base := cur
			if strings.HasPrefix(target, "/") {
				base = 0
			}
			var err error
			if cur, err = m.walkDir(base, strings.Split(target, "/"), create, mtime, hops); err != nil || cur == none {
				return cur, err
			}
		default:
			return none, fmt.Errorf("%w: %q is a %s", ErrNotDir, m.pathOf(next), m.typeOf(next))
		}
	}
	return cur, nil
}

func (m *Merger) pathOf(n int32) string {
	var parts []string
	for ; n > 0; n = m.nodes[n].parent {
		parts = append(parts, m.nodes[n].name)
	}
	slices.Reverse(parts)
	return strings.Join(parts, "/")
}

// Apply applies the changes of one layer, in their order. Layers must be applied oldest
// first. A whiteout hides only what lower layers put at its name: entries of the same layer
// survive it wherever they stand in the tar stream.
func (m *Merger) Apply(changes []Change) error {
	m.layer++
	for i := range changes {
		c := &changes[i]
		var err error
		if strings.HasPrefix(path.Base(c.Name), WhiteoutPrefix) {
			err = m.whiteout(c)
		} else {
			err = m.apply(c)
		}
		if err != nil {
			return fmt.Errorf("entry %q: %w", c.Name, err)
		}
	}
	return nil
}

// isMeta reports whether comps name AUFS metadata, which never reaches the merged tree.
func isMeta(comps []string) bool {
	for _, c := range comps {
		if strings.HasPrefix(c, whiteoutMeta) && c != WhiteoutOpaque {
			return true
		}
	}
	return false
}

func (m *Merger) whiteout(c *Change) error {
	comps, err := splitPath(c.Name)
	if err != nil {
		return err
	}
	if len(comps) == 0 || isMeta(comps) {
		return nil
	}
	if err := checkParents(comps); err != nil {
		return err
	}
	parent, base := comps[:len(comps)-1], comps[len(comps)-1]
	target := ""
	if base != WhiteoutOpaque {
		target = base[len(WhiteoutPrefix):]
		if target == "" || target == "." || target == ".." {
			return fmt.Errorf("%w: %q", ErrBadWhiteout, base)
		}
		err = checkLengths(append(parent[:len(parent):len(parent)], target))
	} else {
		err = checkLengths(parent)
	}
	if err != nil {
		return err
	}
	hops := 0
	dir, err := m.walkDir(0, parent, false, 0, &hops)
	if errors.Is(err, ErrNotDir) {
		// The parent is no directory (this layer may just have replaced it by a file, as
		// umoci writes dir-to-file changes): there is nothing below it to hide.
		return nil
	}
	if err != nil || dir == none {
		return err // a whiteout under a missing directory hides nothing
	}
	if target == "" {
		m.purgeBelow(dir, c.Mtime)
		return nil
	}
	if n := m.child(dir, target); n != none {
		m.purge(n, c.Mtime)
	}
	return nil
}

// purge removes what lower layers put at node n and below it, and keeps what the current
// layer put there. A lower directory that holds entries of the current layer stays as an
// implicit directory (0755, 0:0, mtime of the whiteout): its own metadata was lower content.
func (m *Merger) purge(n int32, mtime int64) {
	if m.nodes[n].layer != m.layer {
		if !m.holdsLayer(n) {
			m.remove(n)
			return
		}
		m.nodes[n].ino = m.addInode(index.Inode{Type: index.Dir, Mode: 0o755, Mtime: mtime, Layer: index.NoLayer})
		m.nodes[n].layer = m.layer
	}
	m.purgeBelow(n, mtime)
}

// purgeBelow purges every child of directory n.
func (m *Merger) purgeBelow(n int32, mtime int64) {
	for c := m.nodes[n].first; c != none; c = m.nodes[c].next {
		if !m.nodes[c].dead {
			m.purge(c, mtime)
		}
	}
}

// holdsLayer reports whether the current layer put anything below directory n.
func (m *Merger) holdsLayer(n int32) bool {
	for c := m.nodes[n].first; c != none; c = m.nodes[c].next {
		if !m.nodes[c].dead && (m.nodes[c].layer == m.layer || m.holdsLayer(c)) {
			return true
		}
	}
	return false
}

// checkParents rejects whiteout names used as directories: a whiteout is a marker, never a
// container of other entries.
func checkParents(comps []string) error {
	for _, c := range comps[:len(comps)-1] {
		if strings.HasPrefix(c, WhiteoutPrefix) {
			return fmt.Errorf("%w: %q used as a directory", ErrBadWhiteout, c)
		}
	}
	return nil
}

func (m *Merger) apply(c *Change) error {
	comps, err := splitPath(c.Name)
	if err != nil {
		return err
	}
	if isMeta(comps) {
		return nil
	}
	if err := checkLengths(comps); err != nil {
		return err
	}
	if len(comps) == 0 {
		if c.Hardlink || c.Type != index.Dir {
			return ErrRootNotDir
		}
		m.setDir(0, c)
		return nil
	}
	base := comps[len(comps)-1]
	if err := checkParents(comps); err != nil {
		return err
	}
	hops := 0
	dir, err := m.walkDir(0, comps[:len(comps)-1], true, c.Mtime, &hops)
	if err != nil {
		return err
	}
	old := m.child(dir, base)
	if c.Hardlink {
		return m.link(dir, base, old, c.Link)
	}
	if old != none && c.Type == index.Dir && m.typeOf(old) == index.Dir {
		m.setDir(old, c)
		return nil
	}
	if old != none {
		m.remove(old)
	}
	_, err = m.addNode(dir, base, m.addInode(c.Inode))
	return err
}

// setDir replaces the metadata of directory n and keeps its children.
func (m *Merger) setDir(n int32, c *Change) {
	in := c.Inode
	in.Size = 0
	m.inodes[m.nodes[n].ino] = in
	m.nodes[n].layer = m.layer
}

func (m *Merger) link(dir int32, base string, old int32, target string) error {
	comps, err := splitPath(target)
	if err == nil {
		err = checkLengths(comps)
	}
	if err != nil {
		return fmt.Errorf("%w %q: %w", ErrLinkTarget, target, err)
	}
	if len(comps) == 0 {
		return fmt.Errorf("%w %q is the root directory", ErrLinkTarget, target)
	}
	hops := 0
	tdir, err := m.walkDir(0, comps[:len(comps)-1], false, 0, &hops)
	if err != nil {
		return fmt.Errorf("%w %q: %w", ErrLinkTarget, target, err)
	}
	var t int32 = none
	if tdir != none {
		t = m.child(tdir, comps[len(comps)-1])
	}
	switch {
	case t == none:
		return fmt.Errorf("%w %q does not exist", ErrLinkTarget, target)
	case m.typeOf(t) == index.Dir:
		return fmt.Errorf("%w %q is a directory", ErrLinkTarget, target)
	case old == t:
		return nil // a name linked to itself
	}
	ino := m.nodes[t].ino
	if old != none {
		m.remove(old)
	}
	_, err = m.addNode(dir, base, ino)
	return err
}
