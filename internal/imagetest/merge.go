package imagetest

import (
	"bytes"
	"fmt"

	"github.com/ocirender/ocirender/index"
	"github.com/ocirender/ocirender/overlay"
)

// Merge writes each list of files as a layer, merges the layers oldest first and returns the
// index with the uncompressed layers its content locators point into.
func Merge(layers ...[]Entry) (*index.Index, [][]byte, error) {
	m := overlay.New(overlay.Options{})
	var raw [][]byte
	for i, files := range layers {
		b := Layer(files...)
		raw = append(raw, b)
		ch, err := overlay.ReadChanges(bytes.NewReader(b), overlay.ScanOptions{Layer: i})
		if err != nil {
			return nil, raw, fmt.Errorf("layer %d: %w", i, err)
		}
		if err := m.Apply(ch); err != nil {
			return nil, raw, fmt.Errorf("layer %d: %w", i, err)
		}
	}
	ix, err := m.Index()
	return ix, raw, err
}
