package overlay_test

import (
	"archive/tar"
	"bytes"
	"strings"
	"testing"

	"github.com/ocirender/ocirender/index"
	"github.com/ocirender/ocirender/internal/imagetest"
	"github.com/ocirender/ocirender/overlay"
)

// FuzzReadChanges feeds arbitrary bytes to the tar scan: it must fail cleanly or return
// entries whose content lies inside the stream.
func FuzzReadChanges(f *testing.F) {
	f.Add(imagetest.Layer(reg("a", "hello"), dir("d"), sym("s", "a"), hard("h", "a")))
	f.Add(imagetest.Layer(reg(strings.Repeat("x/", 80)+"f", "1").With(func(f *F) { f.Format = tar.FormatGNU })))
	f.Add(imagetest.Layer(reg("x", "").With(func(f *F) { f.Xattrs = map[string]string{"user.a": "\x00\x01"} })))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		ch, err := overlay.ReadChanges(bytes.NewReader(b), overlay.ScanOptions{MaxEntries: 1000})
		if err != nil {
			return
		}
		for _, c := range ch {
			if c.Type == index.Reg && (c.Offset < 0 || c.Offset+c.Size > int64(len(b))) {
				t.Fatalf("entry %q: content [%d,+%d) outside a %d-byte stream", c.Name, c.Offset, c.Size, len(b))
			}
		}
		m := overlay.New(overlay.Options{MaxEntries: 5000})
		if m.Apply(ch) == nil {
			checkIndex(t, m)
		}
	})
}

var fuzzNames = []string{"a", "b", "d", "d/x", "d/e/y", "l", "l/z", ".wh.a", "d/.wh.x", ".wh.d", "d/.wh..wh..opq",
	".wh..wh.plnk/1", "../up", "/abs", "s/.", "./d/../b", ".wh.",
	// At the name limits: whiteouts of 255-byte names are 259-byte names of their own.
	name255, ".wh." + name255, "d/" + name255, "d/.wh." + name255, name255 + "/.wh..wh..opq", "n" + name255, ".wh.n" + name255}

// FuzzMerge builds up to four layers from the fuzzer's bytes (each byte pair picks an entry
// type and a name) and merges them: no panic, and every merged tree satisfies the invariants.
func FuzzMerge(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 255, 4, 5, 6, 7, 255, 8, 9})
	f.Add([]byte{3, 5, 1, 6, 255, 0, 6, 255, 4, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		var layers [][]F
		var cur []F
		for i := 0; i+1 < len(b) && len(layers) < 4; i += 2 {
			if b[i] == 255 {
				layers = append(layers, cur)
				cur = nil
				i--
				continue
			}
			name := fuzzNames[int(b[i+1])%len(fuzzNames)]
			other := fuzzNames[int(b[i+1]/16)%len(fuzzNames)]
			switch b[i] % 6 {
			case 0:
				cur = append(cur, reg(name, name))
			case 1:
				cur = append(cur, dir(name))
			case 2:
				cur = append(cur, sym(name, other))
			case 3:
				cur = append(cur, hard(name, other))
			case 4:
				cur = append(cur, sym(name, "/"+other))
			case 5:
				cur = append(cur, reg(name, "").With(typ(tar.TypeFifo)))
			}
		}
		layers = append(layers, cur)
		m := overlay.New(overlay.Options{})
		for _, l := range layers {
			var tb bytes.Buffer
			tw := tar.NewWriter(&tb)
			for _, e := range l {
				h := &tar.Header{Name: e.Name, Typeflag: e.Type, Linkname: e.Link, Mode: 0o644, Size: int64(len(e.Body))}
				if h.Typeflag != tar.TypeReg {
					h.Size = 0
				}
				if tw.WriteHeader(h) != nil {
					return
				}
				if h.Size > 0 {
					tw.Write([]byte(e.Body))
				}
			}
			tw.Close()
			ch, err := overlay.ReadChanges(&tb, overlay.ScanOptions{})
			if err != nil {
				t.Fatalf("ReadChanges of a valid tar: %v", err)
			}
			if m.Apply(ch) != nil {
				return
			}
		}
		checkIndex(t, m)
	})
}

func checkIndex(t *testing.T, m *overlay.Merger) {
	t.Helper()
	ix, err := m.Index()
	if err != nil {
		t.Fatalf("Index: %v", err)
	}
	ix.Walk(index.Root, func(id index.ID, p string) error {
		if strings.HasPrefix(ix.Name(id), ".wh.") {
			t.Errorf("whiteout %q in the merged tree", p)
		}
		got, err := ix.Lookup(p)
		if err != nil || got != id {
			t.Errorf("Lookup(%q) = %d, %v; want %d", p, got, err, id)
		}
		if id != index.Root && ix.Type(ix.Parent(id)) != index.Dir {
			t.Errorf("parent of %q is not a directory", p)
		}
		return nil
	})
}
