package tests

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ocirender/ocirender/verify"
)

// exportMode is one way to get a merged tree out of ocirender onto disk,
// where verify.ScanDir can read it.
type exportMode struct {
	name string
	// export writes image (tag ref) below work and returns the tree's root
	// and, for tar outputs, the sha256 of the tar stream.
	export func(t *testing.T, ctx context.Context, image, ref, work string) (root, tarSum string)
}

var exportModes = []exportMode{
	{"dir", exportDir},
	{"tar-file", exportTarFile},
	{"tar-stdout", exportTarStdout},
}

func exportArgs(format, out, image, ref string) []string {
	args := []string{"export", "--format", format, "-o", out}
	if ref != "" {
		args = append(args, "--ref", ref)
	}
	return append(args, image)
}

// exportDir: ocirender export --format dir -o OUT.
func exportDir(t *testing.T, ctx context.Context, image, ref, work string) (string, string) {
	out := filepath.Join(work, "out")
	mustRun(t, ctx, ocirenderBin(t), exportArgs("dir", out, image, ref)...)
	return out, ""
}

// gnuTarArgs extracts a tar exactly as a user restoring an image would, as
// root: permissions, numeric owners, every xattr namespace.
func gnuTarArgs(archive, dest string) []string {
	return []string{"--xattrs", "--xattrs-include=*", "--numeric-owner", "-xpf", archive, "-C", dest}
}

// tarStdoutSum: ocirender export --format tar -o -, hashed, not extracted.
func tarStdoutSum(t *testing.T, ctx context.Context, image, ref, work string) (string, string) {
	h := sha256.New()
	var stderr strings.Builder
	prod := exec.CommandContext(ctx, ocirenderBin(t), exportArgs("tar", "-", image, ref)...)
	prod.Stdout, prod.Stderr = h, &stderr
	if err := prod.Run(); err != nil {
		t.Fatalf("ocirender export -o -: %v, stderr:\n%s", err, stderr.String())
	}
	return "", hex.EncodeToString(h.Sum(nil))
}

// exportTarFile: ocirender export --format tar -o T.tar, extracted by GNU tar.
func exportTarFile(t *testing.T, ctx context.Context, image, ref, work string) (string, string) {
	archive := filepath.Join(work, "out.tar")
	mustRun(t, ctx, ocirenderBin(t), exportArgs("tar", archive, image, ref)...)
	sum := fileSum(t, archive)
	if err := tarShape(archive); err != nil {
		t.Errorf("export --format tar: %v", err)
	}
	x := filepath.Join(work, "x")
	if err := os.Mkdir(x, 0o700); err != nil {
		t.Fatal(err)
	}
	mustRun(t, ctx, "tar", gnuTarArgs(archive, x)...)
	if err := os.Remove(archive); err != nil { // disk space
		t.Fatal(err)
	}
	return x, sum
}

// exportTarStdout: ocirender export --format tar -o - | tar -x.
func exportTarStdout(t *testing.T, ctx context.Context, image, ref, work string) (string, string) {
	x := filepath.Join(work, "x")
	if err := os.Mkdir(x, 0o700); err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	var tarErr, prodErr strings.Builder
	untar := exec.CommandContext(ctx, "tar", gnuTarArgs("-", x)...)
	untar.Stdin, untar.Stderr = r, &tarErr
	if err := untar.Start(); err != nil {
		t.Fatal(err)
	}
	r.Close()

	h := sha256.New()
	prod := exec.CommandContext(ctx, ocirenderBin(t), exportArgs("tar", "-", image, ref)...)
	prod.Stdout, prod.Stderr = io.MultiWriter(h, w), &prodErr
	perr := prod.Run()
	w.Close()
	terr := untar.Wait()
	if perr != nil {
		t.Fatalf("ocirender export -o -: %v, stderr:\n%s", perr, prodErr.String())
	}
	if terr != nil {
		t.Fatalf("tar -x of ocirender's stdout: %v, stderr:\n%s", terr, tarErr.String())
	}
	return x, hex.EncodeToString(h.Sum(nil))
}

func fileSum(t testing.TB, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// umociTrees remembers what umociTree found, so that the tests of each output format share
// one umoci unpack per image and tag (the slowest step of the suite).
var umociTrees = map[string][]verify.Entry{}

// umociTree unpacks image:tag with umoci and scans the rootfs. Callers must not modify the
// entries: they are shared.
func umociTree(t *testing.T, ctx context.Context, image, tag string) []verify.Entry {
	t.Helper()
	if e, ok := umociTrees[image+":"+tag]; ok {
		return e
	}
	bundle := filepath.Join(t.TempDir(), "bundle")
	mustRun(t, ctx, "umoci", "unpack", "--image", image+":"+tag, bundle)
	entries := scan(t, filepath.Join(bundle, "rootfs"))
	if err := os.RemoveAll(bundle); err != nil {
		t.Fatal(err)
	}
	umociTrees[image+":"+tag] = entries
	return entries
}

// compareWithOracle exports image:ref in every mode and compares each
// result with want. noise drops differences known to come from the oracle.
// Without extractStdout, the tar on stdout is only required to be the
// tar file's bytes, not extracted again: the suite stays short, and every
// tag's stream is still checked.
func compareWithOracle(t *testing.T, ctx context.Context, image, ref string, want []verify.Entry,
	noise func(verify.Difference) bool, extractStdout bool) {
	t.Helper()
	sums := map[string]string{}
	modes := exportModes
	if !extractStdout {
		modes = []exportMode{exportModes[0], exportModes[1], {"tar-stdout", tarStdoutSum}}
	}
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			start := time.Now()
			root, sum := mode.export(t, ctx, image, ref, t.TempDir())
			t.Logf("export %s: %v", mode.name, time.Since(start).Round(time.Millisecond))
			if sum != "" {
				sums[mode.name] = sum
			}
			if root == "" {
				return // a stream compared by its digest below
			}
			var diffs []verify.Difference
			for _, d := range verify.Compare(want, scan(t, root), verify.Options{}) {
				if noise == nil || !noise(d) {
					diffs = append(diffs, d)
				}
			}
			reportDiffs(t, "export --format "+mode.name, diffs)
		})
	}
	// Same input, same bytes: the tar file and the tar on stdout agree.
	if f, s := sums["tar-file"], sums["tar-stdout"]; f != "" && s != "" && f != s {
		t.Errorf("export --format tar: file sha256 %s, stdout sha256 %s; want the same bytes", f, s)
	}
}

// debianTags are the tags mkimage.sh builds, each with the tag whose umoci
// unpack is its oracle (umoci 0.4.7 cannot read zstd layers, so zstd is
// judged by the gzip image it was re-encoded from).
var debianTags = []struct{ tag, oracle string }{
	{"base", "base"},
	{"edits", "edits"},
	{"rework", "rework"},
	{"raw-links", "raw-links"},
	{"raw-whiteouts", "raw-whiteouts"},
	{"latest", "latest"},
	{"recompressed", "recompressed"},
	{"zstd", "latest"},
}

// selectedDebianTags is debianTags, narrowed to the comma-separated tags of
// OCIRENDER_TEST_TAGS when that is set.
func selectedDebianTags() []struct{ tag, oracle string } {
	s := os.Getenv("OCIRENDER_TEST_TAGS")
	if s == "" {
		return debianTags
	}
	only := map[string]bool{}
	for _, tag := range strings.Split(s, ",") {
		only[strings.TrimSpace(tag)] = true
	}
	var out []struct{ tag, oracle string }
	for _, tc := range debianTags {
		if only[tc.tag] {
			out = append(out, tc)
		}
	}
	return out
}

// umociUnpackTime holds the directories a layer of the Debian image leaves
// implicit (raw-whiteouts writes opt/oci/implicit/a/b/c.txt with no entries
// for its parents). umoci makes them with MkdirAll, so their mtime is the
// time of the unpack: no image records one, and we do not compare it. Their
// mode (0755) and owner (root) are compared.
var umociUnpackTime = map[string]bool{
	"opt/oci/implicit":     true,
	"opt/oci/implicit/a":   true,
	"opt/oci/implicit/a/b": true,
}

func debianNoise(d verify.Difference) bool {
	return d.Kind == '~' && d.Field == "mtime" && umociUnpackTime[d.Path]
}

// buildCachedImage runs script (a no-op when its cache is current) with the test cache
// directory and returns the path it prints last, which must hold marker.
func buildCachedImage(t testing.TB, ctx context.Context, script, marker string) string {
	t.Helper()
	cache := os.Getenv("OCIRENDER_TEST_CACHE")
	if cache == "" {
		cache = "/var/cache/ocirender-test"
	}
	start := time.Now()
	r, err := run(ctx, "bash", script, cache)
	if err != nil || r.code != 0 {
		t.Fatalf("tests/%s %s: %v %v", script, cache, err, r)
	}
	t.Logf("%s: %v\n%s", script, time.Since(start).Round(time.Second), r.stderr)
	lines := strings.Split(strings.TrimSpace(string(r.stdout)), "\n")
	out := lines[len(lines)-1]
	if _, err := os.Stat(filepath.Join(out, marker)); err != nil {
		t.Fatalf("%s printed %q, which holds no %s: %v", script, out, marker, err)
	}
	return out
}

// buildDebianImage runs mkimage.sh and returns the layout path.
func buildDebianImage(t testing.TB, ctx context.Context) string {
	t.Helper()
	return buildCachedImage(t, ctx, "mkimage.sh", "index.json")
}

// TestDebianImageMatchesUmoci exports every tag of the Debian oracle image
// as a directory, a tar file and a tar stream, and requires each tree to
// equal what `umoci unpack` makes of the tag: every path, type, mode
// (incl. setuid/setgid/sticky), owner, content, symlink target, device
// number, xattr (byte-exact), mtime (ns) and hard-link group. The only
// exemption is umociUnpackTime.
func TestDebianImageMatchesUmoci(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode: builds, unpacks and exports a Debian image")
	}
	requireRoot(t, "debootstrap, mknod, chown and security.* xattrs, for umoci and for us")
	requireTools(t, "umoci", "debootstrap", "setfattr", "pigz", "zstd", "bash")
	requireGNUTar(t)
	ocirenderBin(t)
	ctx := testContext(t)
	layout := buildDebianImage(t, ctx)

	for _, tc := range selectedDebianTags() {
		t.Run(tc.tag, func(t *testing.T) {
			start := time.Now()
			want := umociTree(t, ctx, layout, tc.oracle)
			t.Logf("umoci unpack %s (or its cached tree): %v, %d entries", tc.oracle, time.Since(start).Round(time.Millisecond), len(want))
			// The tar on stdout is extracted for the tags whose oracle differs most from
			// the base; for the others it must equal the tar file byte for byte.
			extract := tc.tag == "latest" || tc.tag == "raw-whiteouts"
			compareWithOracle(t, ctx, layout, tc.tag, want, debianNoise, extract)
		})
	}
}
