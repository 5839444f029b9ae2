package tests

import (
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkVerifySquashfs: `ocirender verify` of the Debian image's squashfs (benchTag,
// written once by `ocirender export --format squashfs`) against what a user would do
// without it: mount the image with squashfuse and `diff -r` it against the `umoci unpack`
// tree of the same tag.
//
// The umoci unpack is done once, before the loop, and is not timed: the peer's time is
// the squashfuse mount, the diff -r and the unmount only. Ours is timed twice per
// iteration: cold (--no-cache: the image's layers are scanned and hashed) and warm (the
// index cache holds the image: contents are read through its checkpoints). Ours checks
// more than diff -r does: modes, owners, xattrs, mtimes, device numbers and hard links, not
// only names and contents. squashfuse runs as a daemon that the shell does not wait for, so
// its CPU time escapes the peer's rusage: compare wall times.
func BenchmarkVerifySquashfs(b *testing.B) {
	bi := setupBench(b)
	requireTools(b, "squashfuse", "diff", "umount")
	if _, err := os.Stat("/dev/fuse"); err != nil {
		b.Skip("skipped: no /dev/fuse for squashfuse")
	}
	work := b.TempDir()
	img := filepath.Join(work, "out.sqfs")
	measure(b, "", ocirenderBin(b), "export", "-q", "--format", "squashfs", "-o", img, "--ref", benchTag, bi.layout)
	bundle := filepath.Join(work, "bundle")
	measure(b, "", "umoci", "unpack", "--image", bi.layout+":"+benchTag, bundle)
	mnt := filepath.Join(work, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		b.Fatal(err)
	}
	cache := filepath.Join(work, "cache")
	verifyArgs := func(cacheArgs ...string) []string {
		return append(append([]string{"verify", "-q"}, cacheArgs...), img, "--image", bi.layout, "--ref", benchTag)
	}
	measure(b, "", ocirenderBin(b), verifyArgs("--cache-dir", cache)...) // fills the cache

	// diff -r exits 1 for the devices and fifos it cannot compare ("is a character special
	// file while file ... is a character special file"); 2 is trouble.
	const peerScript = `squashfuse "$1" "$2" || exit 2
diff -r --no-dereference "$2" "$3" >/dev/null; s=$?
umount "$2" || exit 2
[ "$s" -le 1 ]`
	var cold, warm, peer usage
	for b.Loop() {
		cold.add(measure(b, "", ocirenderBin(b), verifyArgs("--no-cache")...))
		warm.add(measure(b, "", ocirenderBin(b), verifyArgs("--cache-dir", cache)...))
		peer.add(measure(b, "", "sh", "-c", peerScript, "sh", img, mnt, filepath.Join(bundle, "rootfs")))
	}
	report(b, warm, peer, "squashfuse+diff", bi.entries)
	n := float64(b.N)
	b.ReportMetric(cold.wall.Seconds()/n, "s-wall-cold")
	b.ReportMetric(cold.cpu.Seconds()/n, "s-cpu-cold")
	b.ReportMetric(cold.wall.Seconds()/peer.wall.Seconds(), "x-wall-cold-vs-squashfuse+diff")
	b.ReportMetric(float64(cold.rssKB)/1024, "MB-peak-rss-cold")
}
