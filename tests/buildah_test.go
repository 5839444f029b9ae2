package tests

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocirender/ocirender/verify"
)

// buildBuildahImages runs mkbuildah.sh and returns the directory holding its layout,
// skopeo layout and docker archive.
func buildBuildahImages(t testing.TB, ctx context.Context) string {
	t.Helper()
	return buildCachedImage(t, ctx, "mkbuildah.sh", filepath.Join("layout", "index.json"))
}

// requireBuildahDriver skips when mkbuildah.sh could not build driver's tags, and says why.
func requireBuildahDriver(t *testing.T, dir, driver string) {
	t.Helper()
	if driver != "overlay" {
		return
	}
	if why, err := os.ReadFile(filepath.Join(dir, "overlay.missing")); err == nil {
		t.Skipf("skipped: %s", strings.TrimSpace(string(why)))
	}
}

// TestBuildahImageMatchesUmoci judges the merge by a second real builder: the images
// mkbuildah.sh builds with buildah (vfs storage, which writes a whiteout per deleted child,
// and overlay storage, which writes opaque markers; gzip, zstd and zstd:chunked layers) must
// equal `umoci unpack` of the same image entry for entry (every path, type, mode, owner,
// content digest, link target, device, xattr, mtime in ns and hard-link group) as a
// directory, a tar file extracted by GNU tar, a tar on stdout (the tar file's bytes), a
// squashfs mounted by the kernel (mtimes in seconds) and the FUSE mount. The zstd tags hold the gzip tags' layers
// recompressed; umoci 0.4.7 cannot read zstd, so they are judged by the gzip tag's unpack.
func TestBuildahImageMatchesUmoci(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode: builds images with buildah")
	}
	requireRoot(t, "buildah's rootful storage, mknod, chown and security.* xattrs, mount -o loop")
	requireTools(t, "buildah", "skopeo", "umoci", "setfattr", "bash")
	requireGNUTar(t)
	ocirenderBin(t)
	ctx := testContext(t)
	dir := buildBuildahImages(t, ctx)
	layout := filepath.Join(dir, "layout")
	for _, driver := range []string{"vfs", "overlay"} {
		t.Run(driver, func(t *testing.T) {
			requireBuildahDriver(t, dir, driver)
			want := umociTree(t, ctx, layout, driver)
			for _, tag := range []string{driver, driver + "-zstd", driver + "-chunked"} {
				t.Run(tag, func(t *testing.T) {
					compareWithOracle(t, ctx, layout, tag, want, nil, tag == driver)
					t.Run("squashfs", func(t *testing.T) {
						img := filepath.Join(t.TempDir(), "out.sqfs")
						mustRun(t, ctx, ocirenderBin(t), squashfsArgs(img, layout, tag)...)
						before := squashfsErrors()
						got := scan(t, mountSquashfs(t, img))
						reportDiffs(t, "export --format squashfs (kernel mount)", verify.Compare(inSeconds(want), got, verify.Options{}))
						if after := squashfsErrors(); before >= 0 && after != before {
							t.Errorf("the kernel logged %d SQUASHFS errors", after-before)
						}
					})
					t.Run("mount", func(t *testing.T) {
						requireFUSE(t)
						m := startMount(t, layout, t.TempDir(), "--ref", tag)
						reportDiffs(t, "ocimount", verify.Compare(want, scan(t, m.mnt), verify.Options{}))
						m.stop(t)
						if code := m.cmd.ProcessState.ExitCode(); code != 0 {
							t.Errorf("ocimount after SIGINT: exit %d, want 0; stderr %q", code, m.stderr)
						}
					})
				})
			}
		})
	}
}

// TestSkopeoCopiesMatchUmoci reads the buildah image as other tools hand it on: an OCI
// layout written by `skopeo copy`, and the docker-archive (`docker save`'s format, read in
// place as a .tar) that `skopeo copy` writes. Each exported as a directory must equal
// `umoci unpack` of the image it was copied from.
func TestSkopeoCopiesMatchUmoci(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode: builds images with buildah")
	}
	requireRoot(t, "buildah's rootful storage, mknod, chown and security.* xattrs")
	requireTools(t, "buildah", "skopeo", "umoci", "setfattr", "bash")
	ocirenderBin(t)
	ctx := testContext(t)
	dir := buildBuildahImages(t, ctx)
	layout := filepath.Join(dir, "layout")
	src := "overlay"
	if _, err := os.Stat(filepath.Join(dir, "overlay.missing")); err == nil {
		src = "vfs" // mkbuildah.sh archives the last driver it built
	}
	for _, tc := range []struct{ name, image, ref, oracle string }{
		{"skopeo-layout", filepath.Join(dir, "skopeo"), "vfs", "vfs"},
		{"docker-archive", filepath.Join(dir, "docker.tar"), "ocirender/buildah:" + src, src},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := umociTree(t, ctx, layout, tc.oracle)
			root, _ := exportDir(t, ctx, tc.image, tc.ref, t.TempDir())
			reportDiffs(t, "export --format dir of the "+tc.name, verify.Compare(want, scan(t, root), verify.Options{}))
		})
	}
}
