package cache

import (
	"crypto/sha256"
	"encoding/binary"
	"testing"

	"github.com/ocirender/ocirender/index"
	"github.com/ocirender/ocirender/layer"
)

// withChecksum frames payload as a cache file of the current version.
func withChecksum(payload []byte) []byte {
	out := append([]byte(cacheMagic), 0, 0, 0, 0)
	binary.LittleEndian.PutUint32(out[len(cacheMagic):], cacheVersion)
	sum := sha256.Sum256(payload)
	out = append(out, sum[:]...)
	return append(out, payload...)
}

// FuzzDecode: whatever bytes sit in a cache file, decode returns an error or an
// entry whose index and maps passed validation; it never panics. The checksum is recomputed
// for the fuzzed payload so that the decoders behind it are reached.
func FuzzDecode(f *testing.F) {
	b := index.NewBuilder(4)
	root := b.AddInode(index.Inode{Type: index.Dir, Mode: 0o755, Layer: index.NoLayer})
	b.AddEntry(index.NoParent, "", root)
	file := b.AddInode(index.Inode{Type: index.Reg, Mode: 0o644, Size: 5, Offset: 512, Layer: 0})
	b.AddEntry(0, "f", file)
	ix, err := b.Finish()
	if err != nil {
		f.Fatal(err)
	}
	e := &Entry{Index: ix, Layers: []Layer{{Digest: "sha256:00", Map: &layer.Map{Access: layer.AccessDirect, Size: 2048}}}}
	data, err := encode("sha256:ab", e)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data[len(cacheMagic)+4+32:])
	f.Fuzz(func(t *testing.T, payload []byte) {
		data := withChecksum(payload)
		got, err := decode(data, "sha256:ab")
		if err != nil {
			return
		}
		got.Index.Walk(0, func(index.ID, string) error { return nil })
		if _, err := encode("sha256:ab", got); err != nil {
			t.Fatalf("a decoded entry does not encode again: %v", err)
		}
	})
}
