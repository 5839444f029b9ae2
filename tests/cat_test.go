package tests

import (
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ocirender/ocirender/verify"
)

// TestCatMatchesUmoci: `ocirender cat` of files of the Debian image (every 25th regular file,
// the largest ones and the last of each kind) gives the bytes of the same file in umoci's
// unpacked tree, for gzip layers (checkpoints) and zstd layers (re-encoded spill), cold and
// from the cache. A symlink is followed inside the image unless --no-follow is given.
func TestCatMatchesUmoci(t *testing.T) {
	requireRoot(t, "umoci unpack must mknod and chown")
	requireTools(t, "umoci")
	bin := ocirenderBin(t)
	ctx := testContext(t)
	image := buildDebianImage(t, ctx)
	want := umociTree(t, ctx, image, "latest")
	var files []verify.Entry
	for _, e := range want {
		if e.Type == verify.Reg {
			files = append(files, e)
		}
	}
	bySize := slices.Clone(files)
	slices.SortFunc(bySize, func(a, b verify.Entry) int { return int(b.Size - a.Size) })
	var pick []verify.Entry
	for i, e := range files {
		if i%25 == 0 || i == len(files)-1 {
			pick = append(pick, e)
		}
	}
	pick = append(pick, bySize[:3]...)
	if testing.Short() {
		pick = pick[:10]
	}
	for _, tag := range []string{"latest", "zstd"} {
		t.Run(tag, func(t *testing.T) {
			cache := t.TempDir() // cold for the first file, warm after
			for _, e := range pick {
				r := mustRun(t, ctx, bin, "cat", "--cache-dir", cache, "--ref", tag, image, "/"+e.Path)
				sum := sha256.Sum256(r.stdout)
				if got := hex.EncodeToString(sum[:]); got != e.Digest {
					t.Errorf("cat %s: %d bytes, sha256 %s; umoci has %d bytes, %s", e.Path, len(r.stdout), got, e.Size, e.Digest)
				}
			}
			if n, _ := filepath.Glob(filepath.Join(cache, "index", "*")); len(n) != 1 {
				t.Errorf("cache holds %d index files, want 1", len(n))
			}
		})
	}

	// Symlinks: follow by default, refuse with --no-follow; directories and missing paths fail.
	var link verify.Entry
	for _, e := range want {
		if e.Type == verify.Symlink && !strings.HasPrefix(e.Link, "/") && !strings.Contains(e.Link, "..") {
			target := filepath.Join(filepath.Dir(e.Path), e.Link)
			if i := slices.IndexFunc(files, func(f verify.Entry) bool { return f.Path == target }); i >= 0 {
				link = e
				break
			}
		}
	}
	if link.Path == "" {
		t.Fatal("no relative symlink to a regular file in the image")
	}
	target := filepath.Join(filepath.Dir(link.Path), link.Link)
	r := mustRun(t, ctx, bin, "cat", "--ref", "latest", image, link.Path)
	sum := sha256.Sum256(r.stdout)
	for _, f := range files {
		if f.Path == target && hex.EncodeToString(sum[:]) != f.Digest {
			t.Errorf("cat %s (-> %s): wrong bytes", link.Path, link.Link)
		}
	}
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--no-follow", image, link.Path}, "is a symlink"},
		{[]string{image, "/etc"}, "is a directory"},
		{[]string{image, "/no/such/file"}, "no such file or directory"},
	} {
		res, err := run(ctx, bin, append([]string{"cat", "--ref", "latest"}, c.args...)...)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(res.stderr)), "\n")
		if res.code != 1 || len(res.stdout) != 0 || len(lines) != 1 || !strings.Contains(lines[0], c.msg) {
			t.Errorf("cat %s: exit %d, stdout %d bytes, stderr %q; want exit 1 and one line with %q",
				strings.Join(c.args, " "), res.code, len(res.stdout), res.stderr, c.msg)
		}
	}
}
