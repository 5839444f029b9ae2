package tests

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestCacheVerb: `cache du` counts what an ls and a pull left in the cache, `cache prune
// --max-size` trims it, the next commands rebuild what they need, and `cache clear` empties
// it; bad command lines exit 2.
func TestCacheVerb(t *testing.T) {
	bin := ocirenderBin(t)
	ctx := testContext(t)
	image := filepath.Join(t.TempDir(), "sample")
	writeSample(t, image)
	cache := t.TempDir()
	mustRun(t, ctx, bin, "ls", "--cache-dir", cache, image)
	du := string(mustRun(t, ctx, bin, "cache", "du", "--cache-dir", cache).stdout)
	if !strings.Contains(du, "index       1 files") || !strings.Contains(du, "total       1 files") {
		t.Errorf("cache du after one ls:\n%s", du)
	}
	out := string(mustRun(t, ctx, bin, "cache", "prune", "--max-size", "1", "--cache-dir", cache).stdout)
	if !strings.HasPrefix(out, "removed 1 files") {
		t.Errorf("cache prune --max-size 1: %q", out)
	}
	if du := string(mustRun(t, ctx, bin, "cache", "du", "--cache-dir", cache).stdout); !strings.Contains(du, "total       0 files") {
		t.Errorf("cache du after prune:\n%s", du)
	}
	mustRun(t, ctx, bin, "ls", "--cache-dir", cache, image) // scans again
	out = string(mustRun(t, ctx, bin, "cache", "clear", "--cache-dir", cache).stdout)
	if !strings.HasPrefix(out, "removed 1 files") {
		t.Errorf("cache clear: %q", out)
	}
	for _, args := range [][]string{{"cache"}, {"cache", "prune"}, {"cache", "shrink"}, {"cache", "prune", "--older-than", "soon"},
		{"cache", "clear", "--max-size", "1G"}} {
		r, err := run(ctx, bin, append(args, "--cache-dir", cache)...)
		if err != nil || r.code != 2 {
			t.Errorf("ocirender %s: %v %v, want exit 2", strings.Join(args, " "), err, r)
		}
	}
}
