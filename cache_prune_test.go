package ocirender

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ocirender/ocirender/internal/imagetest"
)

// TestCacheUseSetsAtime: loading an index entry records the use in its access time and
// leaves its modification time, so pruning spares what is used.
func TestCacheUseSetsAtime(t *testing.T) {
	layout, cache := t.TempDir(), t.TempDir()
	if _, err := imagetest.WriteLayout(layout, "", imagetest.GzipBlob(imagetest.Layer(imagetest.Reg("a", "b")))); err != nil {
		t.Fatal(err)
	}
	img, err := Open(context.Background(), layout, Options{CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	img.Close()
	entries, _ := filepath.Glob(filepath.Join(cache, "index", "*"))
	if len(entries) != 1 {
		t.Fatalf("index entries %v", entries)
	}
	old := time.Now().Add(-100 * time.Hour)
	os.Chtimes(entries[0], old, old)
	img, err = Open(context.Background(), layout, Options{CacheDir: cache})
	if err != nil || !img.Cached {
		t.Fatalf("second open: %v, cached %v", err, img != nil && img.Cached)
	}
	img.Close()
	if n, _, _ := PruneCache(cache, PruneOptions{OlderThan: time.Hour}); n != 0 {
		t.Errorf("pruned %d files just used", n)
	}
	fi, _ := os.Stat(entries[0])
	if !fi.ModTime().Equal(old) {
		t.Errorf("mtime %v changed by the use", fi.ModTime())
	}
}
