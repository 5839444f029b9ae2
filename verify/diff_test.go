package verify_test

import (
	"bytes"
	"context"
	"io"
	"reflect"
	"sync"
	"testing"

	"github.com/ocirender/ocirender/internal/imagetest"
	"github.com/ocirender/ocirender/verify"
)

// readLog records the byte ranges read from a layer.
type readLog struct {
	r    io.ReaderAt
	mu   sync.Mutex
	read [][2]int64
}

func (l *readLog) ReadAt(p []byte, off int64) (int, error) {
	l.mu.Lock()
	l.read = append(l.read, [2]int64{off, off + int64(len(p))})
	l.mu.Unlock()
	return l.r.ReadAt(p, off)
}

func (l *readLog) touched(off, size int64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.read {
		if r[0] < off+size && off < r[1] {
			return true
		}
	}
	return false
}

// side merges layers into a Side whose layers log their reads; digests name the layers.
func side(t *testing.T, digests []string, layers ...[]imagetest.Entry) (verify.Side, []*readLog) {
	t.Helper()
	ix, raw, err := imagetest.Merge(layers...)
	check(t, err)
	s := verify.Side{Index: ix, LayerDigests: digests}
	var logs []*readLog
	for _, r := range raw {
		l := &readLog{r: bytes.NewReader(r)}
		logs = append(logs, l)
		s.Layers = append(s.Layers, l)
	}
	return s, logs
}

func TestCompareIndexes(t *testing.T) {
	base := []imagetest.Entry{
		imagetest.Reg("same", "unchanged content"),
		imagetest.Reg("changed", "aaaa"),
		imagetest.Reg("grown", "a"),
		imagetest.Reg("rewritten", "same bytes"),
		imagetest.Reg("chmod", "mode"),
		imagetest.Reg("removed", "gone"),
		imagetest.Sym("link", "same"),
	}
	upper := []imagetest.Entry{
		imagetest.Reg("changed", "bbbb"),
		imagetest.Reg("grown", "aa"),
		imagetest.Reg("rewritten", "same bytes"),
		imagetest.Reg("chmod", "mode").With(func(f *imagetest.Entry) { f.Mode = 0o600 }),
		imagetest.Whiteout("removed"),
		imagetest.Reg("added", "new"),
		imagetest.Sym("link", "changed"),
	}
	a, logsA := side(t, []string{"sha256:base"}, base)
	b, logsB := side(t, []string{"sha256:base", "sha256:upper"}, base, upper)
	diffs, err := verify.CompareIndexes(context.Background(), a, b, verify.Options{}, 2)
	check(t, err)
	var got []string
	for _, d := range diffs {
		got = append(got, string(d.Kind)+" "+d.Path+" "+d.Field)
	}
	want := []string{"+ added ", "~ changed digest", "~ chmod mode", "~ grown size", "~ link link", "- removed "}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("CompareIndexes = %q, want %q", got, want)
	}
	// Files at the same offset of the same blob are not read; those that moved are.
	for _, tc := range []struct {
		path string
		read bool
	}{{"same", false}, {"grown", false}, {"changed", true}, {"rewritten", true}} {
		id, err := a.Index.Lookup(tc.path)
		check(t, err)
		e := a.Index.Entry(id)
		if got := logsA[0].touched(e.Offset, e.Size); got != tc.read {
			t.Errorf("content of %q read: %v, want %v", tc.path, got, tc.read)
		}
	}
	if logsB[0].touched(0, 1<<30) { // what b hashes lives in its upper layer
		t.Errorf("b's base layer was read")
	}

	// Equal images: no differences, nothing read.
	c, logsC := side(t, []string{"sha256:base"}, base)
	diffs, err = verify.CompareIndexes(context.Background(), a, c, verify.Options{}, 0)
	check(t, err)
	if len(diffs) != 0 || logsC[0].touched(0, 1<<30) {
		t.Errorf("CompareIndexes of an image with itself = %v (read: %v), want none", diffs, logsC[0].touched(0, 1<<30))
	}
	// The same bytes under another digest are read, and equal.
	d, _ := side(t, []string{"sha256:recompressed"}, base)
	diffs, err = verify.CompareIndexes(context.Background(), a, d, verify.Options{}, 0)
	check(t, err)
	if len(diffs) != 0 {
		t.Errorf("CompareIndexes of a recompressed image = %v, want none", diffs)
	}
	// Without layers, a comparison that needs content is an error.
	d.Layers = nil
	if _, err := verify.CompareIndexes(context.Background(), a, d, verify.Options{}, 0); err == nil {
		t.Errorf("CompareIndexes without the content it needs = nil error")
	}
}

func TestSummarize(t *testing.T) {
	diffs := []verify.Difference{
		{Path: "a", Kind: '-'}, {Path: "b", Kind: '~', Field: "mode"}, {Path: "b", Kind: '~', Field: "xattr user.x"},
		{Path: "c", Kind: '+'}, {Path: "c/d", Kind: '+'}, {Path: "e", Kind: '~', Field: "xattr user.y"},
	}
	got := verify.Summarize(diffs)
	want := verify.Summary{Missing: 1, Extra: 2, Changed: 2, Fields: map[string]int{"mode": 1, "xattr": 2}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Summarize = %+v, want %+v", got, want)
	}
}
