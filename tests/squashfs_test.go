package tests

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ocirender/ocirender/internal/treetest"
	"github.com/ocirender/ocirender/verify"
)

// squashfsArgs is `ocirender export --format squashfs` with extra flags.
func squashfsArgs(out, image, ref string, flags ...string) []string {
	args := append([]string{"export", "-q", "--format", "squashfs", "-o", out}, flags...)
	if ref != "" {
		args = append(args, "--ref", ref)
	}
	return append(args, image)
}

// inSeconds is want as squashfs stores it: mtimes in whole seconds, unsigned 32 bits (the
// Debian image's 1960, 1969 and 2250 mtimes become 1970 and 2106, with a notice).
func inSeconds(want []verify.Entry) []verify.Entry {
	out := make([]verify.Entry, len(want))
	for i, e := range want {
		e.MtimeNs -= ((e.MtimeNs % 1e9) + 1e9) % 1e9
		e.MtimeNs = min(max(e.MtimeNs, 0), math.MaxUint32*1e9)
		out[i] = e
	}
	return out
}

// squashfsErrors counts "SQUASHFS error" lines in the kernel log; -1 when unreadable.
func squashfsErrors() int {
	out, err := exec.Command("dmesg").Output()
	if err != nil {
		return -1
	}
	return bytes.Count(out, []byte("SQUASHFS error"))
}

// mountSquashfs loop-mounts img read-only with the kernel until the test ends.
func mountSquashfs(t *testing.T, img string) string {
	t.Helper()
	dir := t.TempDir()
	r, err := run(testContext(t), "mount", "-t", "squashfs", "-o", "loop,ro", img, dir)
	if err != nil || r.code != 0 {
		t.Fatalf("mount -t squashfs -o loop,ro %s: %v %v", img, err, r)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
		}
	})
	return dir
}

// TestSquashfsMatchesUmoci exports every tag of the Debian oracle image as a squashfs with the
// CLI, mounts it with the kernel and requires the tree to equal `umoci unpack` of the tag
// field by field (mtimes in whole seconds, which is all squashfs stores); unsquashfs must list
// and extract it.
func TestSquashfsMatchesUmoci(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode: builds, unpacks and exports a Debian image")
	}
	requireRoot(t, "debootstrap, umoci unpack and mount -o loop")
	requireTools(t, "umoci", "debootstrap", "setfattr", "pigz", "zstd", "bash", "unsquashfs")
	ocirenderBin(t)
	ctx := testContext(t)
	layout := buildDebianImage(t, ctx)
	for _, tc := range selectedDebianTags() {
		t.Run(tc.tag, func(t *testing.T) {
			want := inSeconds(umociTree(t, ctx, layout, tc.oracle))
			img := filepath.Join(t.TempDir(), "out.sqfs")
			start := time.Now()
			mustRun(t, ctx, ocirenderBin(t), squashfsArgs(img, layout, tc.tag)...)
			t.Logf("export --format squashfs: %v", time.Since(start).Round(time.Millisecond))
			before := squashfsErrors()
			var diffs []verify.Difference
			for _, d := range verify.Compare(want, scan(t, mountSquashfs(t, img)), verify.Options{}) {
				if !debianNoise(d) {
					diffs = append(diffs, d)
				}
			}
			reportDiffs(t, "export --format squashfs (kernel mount)", diffs)
			if before < 0 {
				t.Log("dmesg is not readable: kernel log not checked for SQUASHFS errors")
			} else if after := squashfsErrors(); after != before {
				t.Errorf("the kernel logged %d SQUASHFS errors", after-before)
			}
			mustRun(t, ctx, "unsquashfs", "-s", img)
			mustRun(t, ctx, "unsquashfs", "-lln", img)
			x := filepath.Join(t.TempDir(), "x")
			mustRun(t, ctx, "unsquashfs", "-n", "-d", x, img)
			diffs = nil
			for _, d := range verify.Compare(want, scan(t, x), verify.Options{}) {
				if !debianNoise(d) {
					diffs = append(diffs, d)
				}
			}
			reportDiffs(t, "export --format squashfs (unsquashfs -d)", diffs)
		})
	}
}

// sampleImage writes the small sample image (tag "sample") and returns its layout.
func sampleImage(t *testing.T) string {
	image := filepath.Join(t.TempDir(), "sample")
	writeSample(t, image)
	return image
}

// TestSquashfsSampleMatchesUmoci is the quick version of TestSquashfsMatchesUmoci, once per
// compressor (lz4 also in high-compression mode) and with the export table: the kernel
// (with nothing in its log), unsquashfs and squashfuse must each show the tree of umoci.
func TestSquashfsSampleMatchesUmoci(t *testing.T) {
	requireRoot(t, "umoci unpack and mount -o loop")
	requireTools(t, "umoci")
	ocirenderBin(t)
	ctx := testContext(t)
	image := sampleImage(t)
	want := inSeconds(umociTree(t, ctx, image, "sample"))
	for _, flags := range [][]string{
		{}, {"--compression", "gzip", "--level", "1"}, {"--compression", "xz"},
		{"--compression", "lz4"}, {"--compression", "lz4", "--level", "9", "--block-size", "64K"},
		{"--block-size", "4K", "--exportable", "--threads", "1"},
	} {
		t.Run(strings.Join(flags, " "), func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "out.sqfs")
			mustRun(t, ctx, ocirenderBin(t), squashfsArgs(img, image, "sample", flags...)...)
			t.Run("kernel", func(t *testing.T) {
				before := squashfsErrors()
				reportDiffs(t, "export --format squashfs (kernel mount)",
					verify.Compare(want, scan(t, mountSquashfs(t, img)), verify.Options{}))
				if before < 0 {
					t.Log("dmesg is not readable: kernel log not checked for SQUASHFS errors")
				} else if after := squashfsErrors(); after != before {
					t.Errorf("the kernel logged %d SQUASHFS errors", after-before)
				}
			})
			t.Run("unsquashfs", func(t *testing.T) {
				requireTools(t, "unsquashfs")
				mustRun(t, ctx, "unsquashfs", "-s", img)
				mustRun(t, ctx, "unsquashfs", "-lln", img)
				x := filepath.Join(t.TempDir(), "x")
				mustRun(t, ctx, "unsquashfs", "-n", "-d", x, img)
				reportDiffs(t, "export --format squashfs (unsquashfs -d)", verify.Compare(want, scan(t, x), verify.Options{}))
			})
			t.Run("squashfuse", func(t *testing.T) {
				requireTools(t, "squashfuse")
				if _, err := os.Stat("/dev/fuse"); err != nil {
					t.Skip("skipped: no /dev/fuse")
				}
				reportDiffs(t, "export --format squashfs (squashfuse)", squashfuseDiffs(want, scan(t, mountSquashfuse(t, img))))
			})
		})
	}
}

// mountSquashfuse mounts img with squashfuse until the test ends.
func mountSquashfuse(t *testing.T, img string) string {
	t.Helper()
	dir := t.TempDir()
	mustRun(t, testContext(t), "squashfuse", img, dir)
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
		}
	})
	return dir
}

// squashfuseDiffs compares what squashfuse shows with want, minus what squashfuse 0.1.104
// gets wrong with every image (mksquashfs's too): it shows trusted.* xattrs as security.*
// and back, and gives every name of a hard link its own inode.
func squashfuseDiffs(want, got []verify.Entry) []verify.Difference {
	treetest.UndoSquashfuseXattrSwap(got)
	var diffs []verify.Difference
	for _, d := range verify.Compare(want, got, verify.Options{}) {
		if d.Field != "hardlink" {
			diffs = append(diffs, d)
		}
	}
	return diffs
}

// TestSquashfsReproducible requires the same bytes for 1, 2 and 8 threads and across runs,
// and SOURCE_DATE_EPOCH as the superblock's creation time.
func TestSquashfsReproducible(t *testing.T) {
	ocirenderBin(t)
	ctx := testContext(t)
	image := sampleImage(t)
	work := t.TempDir()
	var first []byte
	for i, threads := range []string{"1", "2", "8", "8"} {
		img := filepath.Join(work, threads+"-"+string(rune('a'+i))+".sqfs")
		cmd := exec.CommandContext(ctx, ocirenderBin(t), squashfsArgs(img, image, "sample", "--threads", threads, "--block-size", "4K")...)
		cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH=1234567890")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("export --threads %s: %v\n%s", threads, err, out)
		}
		b, err := os.ReadFile(img)
		if err != nil {
			t.Fatal(err)
		}
		if got := binary.LittleEndian.Uint32(b[8:]); got != 1234567890 {
			t.Errorf("superblock mkfs time = %d, want SOURCE_DATE_EPOCH 1234567890", got)
		}
		if first == nil {
			first = b
		} else if !bytes.Equal(first, b) {
			t.Errorf("--threads %s: image differs from --threads 1", threads)
		}
	}
}

// TestSquashfsUsage: bad squashfs flags are usage errors (exit 2) that leave nothing behind.
func TestSquashfsUsage(t *testing.T) {
	ocirenderBin(t)
	ctx := testContext(t)
	image := sampleImage(t)
	for _, flags := range [][]string{
		{"--block-size", "3K"}, {"--block-size", "2M"}, {"--compression", "lzo"}, {"--threads", "-1"},
	} {
		out := filepath.Join(t.TempDir(), "out.sqfs")
		r, err := run(ctx, ocirenderBin(t), squashfsArgs(out, image, "sample", flags...)...)
		if err != nil || r.code != 2 {
			t.Errorf("export %v: %v %v, want exit 2", flags, err, r)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("export %v left %s behind", flags, out)
		}
	}
	for _, bad := range [][]string{{"gzip", "12"}, {"lz4", "10"}} {
		out := filepath.Join(t.TempDir(), "out.sqfs")
		r, err := run(ctx, ocirenderBin(t), squashfsArgs(out, image, "sample", "--compression", bad[0], "--level", bad[1])...)
		if err != nil || r.code != 1 {
			t.Errorf("export --compression %s --level %s: %v %v, want exit 1", bad[0], bad[1], err, r)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("export --compression %s --level %s left %s behind", bad[0], bad[1], out)
		}
	}
}
