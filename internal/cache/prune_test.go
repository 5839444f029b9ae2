package cache

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestPrune: prune removes least recently used files first (by access time), files
// unused for longer than OlderThan, day-old temporary files and, with All, everything.
func TestPrune(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	type file struct {
		path string
		size int
		used time.Duration // ago
		mod  time.Duration // ago
	}
	files := []file{
		{"index/a.v1", 100, 1 * time.Hour, 10 * time.Hour},
		{"index/b.v1", 100, 48 * time.Hour, 48 * time.Hour},
		{"spill/c.zst", 300, 2 * time.Hour, 50 * time.Hour},
		{"blobs/sha256/d", 500, 30 * time.Minute, 100 * time.Hour},
		{"blobs/sha256/.tmp-old", 50, 0, 30 * time.Hour},
		{"blobs/sha256/.tmp-new", 50, 0, time.Hour},
	}
	setup := func(t *testing.T) string {
		dir := t.TempDir()
		for _, f := range files {
			p := filepath.Join(dir, f.path)
			os.MkdirAll(filepath.Dir(p), 0o755)
			os.WriteFile(p, make([]byte, f.size), 0o644)
			if err := os.Chtimes(p, now.Add(-f.used), now.Add(-f.mod)); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	left := func(dir string) []string {
		var out []string
		for _, f := range files {
			if _, err := os.Stat(filepath.Join(dir, f.path)); err == nil {
				out = append(out, f.path)
			}
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		opts  PruneOptions
		left  []string
		bytes int64
	}{
		{"only old temporaries", PruneOptions{MaxBytes: 10000}, []string{"index/a.v1", "index/b.v1", "spill/c.zst", "blobs/sha256/d", "blobs/sha256/.tmp-new"}, 50},
		{"to 700 bytes, least recently used first", PruneOptions{MaxBytes: 700}, []string{"index/a.v1", "blobs/sha256/d", "blobs/sha256/.tmp-new"}, 450},
		{"to 1 byte", PruneOptions{MaxBytes: 1}, []string{"blobs/sha256/.tmp-new"}, 1050},
		{"unused for a day", PruneOptions{OlderThan: 24 * time.Hour}, []string{"index/a.v1", "spill/c.zst", "blobs/sha256/d", "blobs/sha256/.tmp-new"}, 150},
		{"all", PruneOptions{All: true}, nil, 1100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := setup(t)
			tc.opts.Now = now
			_, bytes, err := Prune(dir, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if got := left(dir); !slices.Equal(got, tc.left) || bytes != tc.bytes {
				t.Errorf("left %v (%d bytes removed), want %v (%d)", got, bytes, tc.left, tc.bytes)
			}
		})
	}
	// Not a cache: refused, nothing removed.
	home := setup(t)
	os.WriteFile(filepath.Join(home, ".bashrc"), nil, 0o644)
	if _, _, err := Prune(home, PruneOptions{All: true}); err == nil || len(left(home)) != len(files) {
		t.Errorf("prune of a directory that is no cache: %v, left %v", err, left(home))
	}
	usage, err := Usage(setup(t))
	if err != nil {
		t.Fatal(err)
	}
	want := []Kind{{"index", 2, 200}, {"spill", 1, 300}, {"blobs", 3, 600}}
	if !slices.Equal(usage, want) {
		t.Errorf("usage %v, want %v", usage, want)
	}
}
