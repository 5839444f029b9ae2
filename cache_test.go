package ocirender_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ocirender/ocirender"
	"github.com/ocirender/ocirender/internal/imagetest"
)

// openCached opens dir with the cache in cacheDir and returns the image and the notices.
func openCached(t *testing.T, dir, cacheDir string, spool bool) (*ocirender.Image, []string) {
	t.Helper()
	var notices []string
	img, err := ocirender.Open(context.Background(), dir, ocirender.Options{
		Content: true, Spool: spool, TempDir: t.TempDir(), CacheDir: cacheDir,
		Notice: func(msg string) { notices = append(notices, msg) },
	})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { img.Close() })
	return img, notices
}

func cacheFiles(t *testing.T, cacheDir, sub string) []string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(cacheDir, sub, "[^.]*"))
	return m
}

// big is a layer whose zstd encoding is one frame too large to decode whole for a small
// read, so the scan re-encodes it into a spill file.
var big = imagetest.Layer(imagetest.Reg("opt/big", bigBody()), imagetest.Reg("opt/after", "after the big one"))

func bigBody() string {
	b := make([]byte, 0, 9<<20)
	for i := uint64(0); len(b) < 9<<20; i++ {
		b = strconv.AppendUint(b, i*2654435761%1000003, 16)
		b = append(b, '\n')
	}
	return string(b)
}

// Every compression round-trips through the cache: the second Open takes the index and maps
// from it, and the content read through them is the same as a spooled scan's.
func TestCacheRoundTrip(t *testing.T) {
	for _, c := range []struct {
		name  string
		blob  func([]byte) imagetest.Blob
		spill bool
	}{{"tar", imagetest.TarBlob, false}, {"gzip", imagetest.GzipBlob, false}, {"zstd", imagetest.ZstdBlob, true}} {
		t.Run(c.name, func(t *testing.T) {
			dir, cacheDir := t.TempDir(), t.TempDir()
			layers := []imagetest.Blob{c.blob(base), c.blob(upper)}
			if c.spill {
				layers = append(layers, c.blob(big))
			}
			if _, err := imagetest.WriteLayout(dir, "", layers...); err != nil {
				t.Fatal(err)
			}
			spooled, _ := openCached(t, dir, "", true)
			want := tarListing(t, spooled)

			cold, notices := openCached(t, dir, cacheDir, false)
			if cold.Cached || len(notices) != 0 {
				t.Fatalf("first open: cached %v, notices %q", cold.Cached, notices)
			}
			if got := tarListing(t, cold); got != want {
				t.Errorf("cold scan through checkpoints:\n%s\nwant\n%s", got, want)
			}
			if n := len(cacheFiles(t, cacheDir, "index")); n != 1 {
				t.Fatalf("%d index cache files, want 1", n)
			}
			if n := len(cacheFiles(t, cacheDir, "spill")); (n == 1) != c.spill {
				t.Fatalf("%d spill files (spill expected: %v)", n, c.spill)
			}
			warm, notices := openCached(t, dir, cacheDir, true)
			if !warm.Cached || len(notices) != 0 {
				t.Fatalf("second open: cached %v, notices %q", warm.Cached, notices)
			}
			if got := tarListing(t, warm); got != want {
				t.Errorf("warm open:\n%s\nwant\n%s", got, want)
			}
			if warm.Index.Len() != spooled.Index.Len() {
				t.Errorf("warm index has %d entries, want %d", warm.Index.Len(), spooled.Index.Len())
			}
		})
	}
}

// A cache file that is corrupt, truncated, of another version or stale is rebuilt with a
// notice, never trusted.
func TestCacheNotTrusted(t *testing.T) {
	dir := t.TempDir()
	if _, err := imagetest.WriteLayout(dir, "", imagetest.GzipBlob(base), imagetest.ZstdBlob(big), imagetest.ZstdBlob(upper)); err != nil {
		t.Fatal(err)
	}
	spooled, _ := openCached(t, dir, "", true)
	want := tarListing(t, spooled)
	for _, c := range []struct {
		name, notice string
		spoil        func(t *testing.T, cacheDir string)
	}{
		{"flipped byte", "checksum", func(t *testing.T, cacheDir string) {
			f := cacheFiles(t, cacheDir, "index")[0]
			b, _ := os.ReadFile(f)
			b[len(b)-7] ^= 0x20
			os.WriteFile(f, b, 0o600)
		}},
		{"truncated", "unusable", func(t *testing.T, cacheDir string) {
			f := cacheFiles(t, cacheDir, "index")[0]
			b, _ := os.ReadFile(f)
			os.WriteFile(f, b[:len(b)/2], 0o600)
		}},
		{"garbage", "not a cache file", func(t *testing.T, cacheDir string) {
			os.WriteFile(cacheFiles(t, cacheDir, "index")[0], []byte("hello"), 0o600)
		}},
		{"other version", "version", func(t *testing.T, cacheDir string) {
			f := cacheFiles(t, cacheDir, "index")[0]
			b, _ := os.ReadFile(f)
			b[len("ocirender-cache\n")]++
			os.WriteFile(f, b, 0o600)
		}},
		{"blob touched", "stale", func(t *testing.T, cacheDir string) {
			blobs, _ := filepath.Glob(filepath.Join(dir, "blobs", "sha256", "*"))
			later := time.Now().Add(time.Hour)
			for _, b := range blobs {
				os.Chtimes(b, later, later)
			}
		}},
		{"spill file cut", "stale", func(t *testing.T, cacheDir string) {
			f := cacheFiles(t, cacheDir, "spill")[0]
			os.Truncate(f, 10)
		}},
		{"spill file gone", "unusable", func(t *testing.T, cacheDir string) {
			os.Remove(cacheFiles(t, cacheDir, "spill")[0])
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cacheDir := t.TempDir()
			openCached(t, dir, cacheDir, false)
			c.spoil(t, cacheDir)
			img, notices := openCached(t, dir, cacheDir, false)
			if img.Cached {
				t.Fatal("a spoiled cache entry was used")
			}
			if len(notices) != 1 || !strings.Contains(notices[0], c.notice) {
				t.Fatalf("notices %q, want one mentioning %q", notices, c.notice)
			}
			if got := tarListing(t, img); got != want {
				t.Errorf("after rebuilding:\n%s\nwant\n%s", got, want)
			}
			again, notices := openCached(t, dir, cacheDir, false)
			if !again.Cached || len(notices) != 0 {
				t.Fatalf("the rebuilt entry was not used: cached %v, notices %q", again.Cached, notices)
			}
		})
	}
}
