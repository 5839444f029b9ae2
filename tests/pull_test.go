package tests

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ocirender/ocirender/internal/imagetest"
	"github.com/ocirender/ocirender/internal/registrytest"
	"github.com/ocirender/ocirender/verify"
)

// TestPullSample pulls the sample image from a registry on 127.0.0.1 that wants basic auth,
// with the credentials in $DOCKER_CONFIG, in every format: the dir equals `umoci unpack` of
// the image, the squashfs and the tar are byte-identical to `ocirender export` of the layout,
// and `umoci unpack` of the pulled OCI layout equals the same oracle.
func TestPullSample(t *testing.T) {
	requireRoot(t, "umoci unpack and our dir export must mknod and chown")
	requireTools(t, "umoci")
	bin := ocirenderBin(t)
	ctx := testContext(t)
	image := filepath.Join(t.TempDir(), "sample")
	writeSample(t, image)
	want := umociTree(t, ctx, image, "sample")
	reg := registrytest.New(t, "bob", "hunter2")
	ref := reg.Push(t, image, "sample", "team/sample:v1")
	cfg := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte("bob:hunter2"))
	os.WriteFile(filepath.Join(cfg, "config.json"), fmt.Appendf(nil, `{"auths":{%q:{"auth":%q}}}`, reg.Host(), auth), 0o600)
	t.Setenv("DOCKER_CONFIG", cfg)
	work := t.TempDir()

	dir := filepath.Join(work, "dir")
	mustRun(t, ctx, bin, "pull", "--format", "dir", "-o", dir, ref)
	reportDiffs(t, "pull --format dir", verify.Compare(want, scan(t, dir), verify.Options{}))

	for _, format := range []string{"squashfs", "tar"} {
		exported := filepath.Join(work, "export."+format)
		pulled := filepath.Join(work, "pull."+format)
		mustRun(t, ctx, bin, "export", "--format", format, "--ref", "sample", "-o", exported, image)
		mustRun(t, ctx, bin, "pull", "--format", format, "-o", pulled, ref)
		if fileSum(t, exported) != fileSum(t, pulled) {
			t.Errorf("pull --format %s: not the bytes of export --format %s", format, format)
		}
	}
	stdout := mustRun(t, ctx, bin, "pull", "--format", "tar", "-o", "-", ref).stdout
	if tarFile, _ := os.ReadFile(filepath.Join(work, "pull.tar")); !bytes.Equal(stdout, tarFile) {
		t.Error("pull --format tar -o -: not the bytes of the tar file")
	}

	layout := filepath.Join(work, "layout")
	mustRun(t, ctx, bin, "pull", "--format", "oci", "-o", layout, ref)
	reportDiffs(t, "umoci unpack of pull --format oci", verify.Compare(want, umociTree(t, ctx, layout, "v1"), verify.Options{}))
}

// TestPullFailures: wrong credentials, a blob the registry spoils, a missing tag and a bad
// reference each exit 1 with one line on stderr and leave no output.
func TestPullFailures(t *testing.T) {
	bin := ocirenderBin(t)
	ctx := testContext(t)
	image := filepath.Join(t.TempDir(), "sample")
	l := writeSample(t, image)
	m, err := l.Manifest("sample")
	if err != nil {
		t.Fatal(err)
	}
	open := registrytest.New(t, "", "")
	ref := open.Push(t, image, "sample", "sample:v1")
	spoiled := open.Push(t, image, "sample", "spoiled:v1")
	locked := registrytest.New(t, "bob", "hunter2")
	lockedRef := locked.Push(t, image, "sample", "sample:v1")
	t.Setenv("DOCKER_CONFIG", t.TempDir()) // no credentials

	for _, tc := range []struct {
		name  string
		args  []string
		words []string
		code  int
	}{
		{"no credentials", []string{lockedRef}, []string{lockedRef, "401", "docker login"}, 1},
		// --no-cache: the blob cache of the run may hold the good bytes of this layer.
		{"spoiled blob", []string{"--no-cache", spoiled}, []string{spoiled, "layer 0", "digest mismatch"}, 1},
		{"missing tag", []string{strings.TrimSuffix(ref, ":v1") + ":nope"}, []string{"sample:nope", "MANIFEST_UNKNOWN"}, 1},
		{"bad reference", []string{"UPPER/Case::x"}, []string{"UPPER/Case::x", "not an image reference"}, 1},
		{"no format", []string{"--format", "", ref}, []string{"--format is required"}, 2},
		{"oci to stdout", []string{"--format", "oci", "-o", "-", ref}, []string{"stdout"}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "spoiled blob" {
				open.Spoil(m.Layers[0].Digest.Encoded())
				defer open.Spoil("")
			}
			for _, format := range []string{"squashfs", "oci"} {
				out := t.TempDir()
				args := append([]string{"pull", "--format", format, "-o", filepath.Join(out, "out")}, tc.args...)
				r, err := run(ctx, bin, args...)
				if err != nil {
					t.Fatal(err)
				}
				msg := strings.TrimSuffix(string(r.stderr), "\n")
				if r.code != tc.code || tc.code == 1 && strings.Contains(msg, "\n") || strings.Contains(msg, "panic") {
					t.Errorf("pull %s: exit %d, stderr %q; want exit %d and one line", strings.Join(args, " "), r.code, msg, tc.code)
				}
				for _, w := range tc.words {
					if !strings.Contains(msg, w) {
						t.Errorf("pull %s: stderr %q does not say %q", strings.Join(args, " "), msg, w)
					}
				}
				if left := listDir(t, out); len(left) != 0 {
					t.Errorf("pull %s: left %v", strings.Join(args, " "), left)
				}
				if tc.code == 2 {
					break
				}
			}
		})
	}
	// Into a cache of its own, the spoiled blob never takes its name.
	cache := t.TempDir()
	open.Spoil(m.Layers[0].Digest.Encoded())
	r, err := run(ctx, bin, "pull", "--cache-dir", cache, "--format", "tar", "-o", filepath.Join(t.TempDir(), "x.tar"), spoiled)
	if err != nil || r.code != 1 {
		t.Fatalf("pull of a spoiled blob: %v %v", err, r)
	}
	blobs, _ := filepath.Glob(filepath.Join(cache, "blobs", "sha256", "*"))
	hidden, _ := filepath.Glob(filepath.Join(cache, "blobs", "sha256", ".*"))
	for _, b := range append(blobs, hidden...) {
		if strings.HasSuffix(b, m.Layers[0].Digest.Encoded()) || strings.Contains(filepath.Base(b), ".tmp-") {
			t.Errorf("the spoiled download is in the cache: %s", b)
		}
	}
}

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range des {
		names = append(names, d.Name())
	}
	return names
}

// TestPullDebian pulls the Debian oracle image's six-layer tag from the local registry: the
// squashfs is the bytes `ocirender export` makes of the layout (which the squashfs tests
// judge against umoci and the kernel).
func TestPullDebian(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode: builds a Debian image")
	}
	requireRoot(t, "debootstrap")
	requireTools(t, "umoci", "debootstrap", "setfattr", "pigz", "zstd", "bash")
	bin := ocirenderBin(t)
	ctx := testContext(t)
	layout := buildDebianImage(t, ctx)
	reg := registrytest.New(t, "", "")
	ref := reg.Push(t, layout, "latest", "debian:latest")
	work := t.TempDir()
	exported, pulled := filepath.Join(work, "export.sqfs"), filepath.Join(work, "pull.sqfs")
	start := time.Now()
	mustRun(t, ctx, bin, "pull", "--no-cache", "--format", "squashfs", "-o", pulled, ref)
	t.Logf("pull --no-cache: %v", time.Since(start).Round(time.Millisecond))
	mustRun(t, ctx, bin, "export", "--no-cache", "--format", "squashfs", "--ref", "latest", "-o", exported, layout)
	if fileSum(t, exported) != fileSum(t, pulled) {
		t.Error("pull --format squashfs of the Debian image: not the bytes of export")
	}
}

// TestMountRegistryRef mounts the sample image straight from the registry: the first mount
// downloads and scans, later ones find blobs and index in the cache, and --daemon mounts it
// too, written as a name or as docker://. Every tree equals `umoci unpack`.
func TestMountRegistryRef(t *testing.T) {
	requireFUSE(t)
	requireTools(t, "umoci")
	ocimountBin(t)
	ctx := testContext(t)
	image := filepath.Join(t.TempDir(), "sample")
	writeSample(t, image)
	want := umociTree(t, ctx, image, "sample")
	reg := registrytest.New(t, "", "")
	ref := reg.Push(t, image, "sample", "mount/sample:v1")
	for round, args := range [][]string{{"--no-cache"}, nil, nil} {
		before := reg.BlobGets.Load()
		mnt := t.TempDir()
		m := startMount(t, "docker://"+ref, mnt, args...)
		reportDiffs(t, fmt.Sprintf("ocimount of %s (round %d)", ref, round), verify.Compare(want, scan(t, mnt), verify.Options{}))
		m.stop(t)
		// The config is fetched every time; the layers only the first time into the cache.
		if gets := reg.BlobGets.Load() - before; round == 2 && gets != 1 {
			t.Errorf("round %d: %d blob downloads, want only the config's: the layers are cached", round, gets)
		}
	}
	// --daemon: the background process (which runs in /) pulls the reference, not a path.
	for _, name := range []string{ref, "docker://" + ref} {
		mnt := t.TempDir()
		mustRun(t, ctx, ocimountBin(t), "--daemon", "--no-cache", name, mnt)
		reportDiffs(t, "ocimount --daemon "+name, verify.Compare(want, scan(t, mnt), verify.Options{}))
		mustRun(t, ctx, ocimountBin(t), "-u", mnt)
	}
}

// TestPullInterrupted: SIGINT while the layers download (the registry sends 2 MB/s) stops the
// pull with one line, exit 1, and leaves no output, no temporary file next to it and no
// partial download in the blob cache.
func TestPullInterrupted(t *testing.T) {
	bin := ocirenderBin(t)
	image := filepath.Join(t.TempDir(), "big")
	var entries []imagetest.Entry
	for i := range 40 {
		entries = append(entries, imagetest.Entry{Name: fmt.Sprintf("f%02d", i), Body: strings.Repeat(fmt.Sprint(i, " noise "), 20000+i)})
	}
	// Uncompressed, so that the layer stays large: 40 files of about 200 KB.
	writeImage(t, image, "big", imagetest.TarBlob(e2e.Layer(entries...)), imagetest.GzipBlob(e2e.Layer(entries[:3]...)))
	reg := registrytest.New(t, "", "")
	ref := reg.Push(t, image, "big", "big:v1")
	reg.Throttle(2 << 20)
	for _, format := range []string{"squashfs", "tar", "dir", "oci"} {
		t.Run(format, func(t *testing.T) {
			outDir, cache := t.TempDir(), t.TempDir()
			cmd := exec.Command(bin, "pull", "-q", "--cache-dir", cache, "--format", format, "-o", filepath.Join(outDir, "out"), ref)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(1500 * time.Millisecond) // the 8 MB layer needs about 4 s
			cmd.Process.Signal(syscall.SIGINT)
			if err := cmd.Wait(); err == nil || cmd.ProcessState.ExitCode() != 1 {
				t.Fatalf("interrupted pull: %v, stderr %q; want exit 1", err, stderr.String())
			}
			if msg := strings.TrimSpace(stderr.String()); strings.Contains(msg, "\n") || !strings.Contains(msg, "interrupted") {
				t.Errorf("stderr = %q, want one line saying the pull was interrupted", msg)
			}
			t.Logf("stderr: %s", stderr.String())
			if left := listDir(t, outDir); len(left) != 0 {
				t.Errorf("left behind: %v", left)
			}
			tmps, _ := filepath.Glob(filepath.Join(cache, "blobs", "sha256", ".tmp-*"))
			if len(tmps) != 0 {
				t.Errorf("partial downloads left in the cache: %v", tmps)
			}
		})
	}
}
