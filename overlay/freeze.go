package overlay

import (
	"slices"
	"strings"

	"github.com/ocirender/ocirender/index"
)

// Index freezes the merged tree into an index. Entries are numbered in depth-first pre-order
// with children sorted bytewise, so the index's IDs follow its walk order. The Merger may be
// discarded afterwards.
func (m *Merger) Index() (*index.Index, error) {
	b := index.NewBuilder(m.live)
	inos := make([]index.InodeID, len(m.inodes))
	seen := make([]bool, len(m.inodes))
	ino := func(i int32) index.InodeID {
		if !seen[i] {
			seen[i] = true
			inos[i] = b.AddInode(m.inodes[i])
		}
		return inos[i]
	}
	var kids []int32
	var emit func(n int32, parent index.ID)
	emit = func(n int32, parent index.ID) {
		id := b.AddEntry(parent, m.nodes[n].name, ino(m.nodes[n].ino))
		start := len(kids)
		for c := m.nodes[n].first; c != none; c = m.nodes[c].next {
			if !m.nodes[c].dead {
				kids = append(kids, c)
			}
		}
		mine := kids[start:]
		slices.SortFunc(mine, func(a, b int32) int { return strings.Compare(m.nodes[a].name, m.nodes[b].name) })
		for i := range mine {
			emit(kids[start+i], id)
		}
		kids = kids[:start]
	}
	emit(0, index.NoParent)
	return b.Finish()
}
