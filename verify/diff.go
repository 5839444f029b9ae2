package verify

import (
	"context"

	"github.com/ocirender/ocirender/index"
)

// Side is one image of CompareIndexes: its merged index, its layers' uncompressed streams
// and the digest of each layer's blob.
type Side struct {
	Index *index.Index
	// Layers are read only for regular files whose content cannot be told equal without
	// reading it; nil makes such a comparison an error.
	Layers index.Content
	// LayerDigests names each layer's blob. Two files at the same offset of layers with the
	// same (non-empty) digest have the same bytes.
	LayerDigests []string
}

// CompareIndexes reports how image b differs from image a (a is "want", b is "got"), from
// their indexes alone where it can: every field but the content is compared directly.
// Contents are compared by digest, computed (up to workers goroutines, 0 = GOMAXPROCS) only
// for paths that are regular files of the same size in both and whose content locators
// differ: the same offset in layers of the same blob digest is the same bytes, and a size
// that differs is reported as such without a digest.
func CompareIndexes(ctx context.Context, a, b Side, opts Options, workers int) ([]Difference, error) {
	ea, ia, err := indexEntries(a.Index)
	if err != nil {
		return nil, err
	}
	eb, ib, err := indexEntries(b.Index)
	if err != nil {
		return nil, err
	}
	var needA, needB []int
	for i, j := 0, 0; i < len(ea) && j < len(eb); {
		switch {
		case ea[i].Path < eb[j].Path:
			i++
		case ea[i].Path > eb[j].Path:
			j++
		default:
			if ea[i].Type == Reg && eb[j].Type == Reg && ea[i].Size == eb[j].Size && ea[i].Size > 0 &&
				!sameContent(a, a.Index.Inode(ia[i]), b, b.Index.Inode(ib[j])) {
				needA, needB = append(needA, i), append(needB, j)
			}
			i++
			j++
		}
	}
	if len(needA) > 0 {
		if err := hashIndexOnly(ctx, a.Index, ea, ia, needA, IndexOptions{Layers: a.Layers, Workers: workers}); err != nil {
			return nil, err
		}
		if err := hashIndexOnly(ctx, b.Index, eb, ib, needB, IndexOptions{Layers: b.Layers, Workers: workers}); err != nil {
			return nil, err
		}
	}
	return Compare(ea, eb, opts), nil
}

// sameContent reports whether two inodes' contents are the same bytes of the same blob.
func sameContent(a Side, x index.Inode, b Side, y index.Inode) bool {
	if x.Offset != y.Offset || x.Layer < 0 || y.Layer < 0 || x.Layer >= len(a.LayerDigests) || y.Layer >= len(b.LayerDigests) {
		return false
	}
	d := a.LayerDigests[x.Layer]
	return d != "" && d == b.LayerDigests[y.Layer]
}
