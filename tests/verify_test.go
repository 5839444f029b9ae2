package tests

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ocirender/ocirender/internal/imagetest"
	"github.com/ocirender/ocirender/squashfs"
	"github.com/ocirender/ocirender/verify"
)

// verifyEntries is the image the verify tests change outputs of: files with xattrs, a
// hard-link pair, a setuid file with a capability, a device, a fifo, a symlink, and a file
// of random bytes (stored raw in a squashfs, so that a flipped byte there is bad content,
// not a bad block).
func verifyEntries() []imagetest.Entry {
	r := rand.New(rand.NewPCG(6, 6))
	random := make([]byte, 300<<10)
	for i := range random {
		random[i] = byte(r.Uint32())
	}
	return []imagetest.Entry{
		{Name: "./", Type: tar.TypeDir, Mode: 0o755},
		{Name: "etc/", Type: tar.TypeDir},
		{Name: "etc/hostname", Body: "verify\n"},
		{Name: "etc/conf", Body: "key=value\n", Xattrs: map[string]string{"user.note": "hello", "user.keep": "k"}},
		{Name: "bin/", Type: tar.TypeDir},
		{Name: "bin/ping", Body: "ping", Mode: 0o4755, Xattrs: map[string]string{"security.capability": imagetest.CapNetRaw}},
		{Name: "hl/", Type: tar.TypeDir},
		{Name: "hl/a", Body: "linked\n"},
		{Name: "hl/b", Type: tar.TypeLink, Link: "hl/a"},
		{Name: "data/", Type: tar.TypeDir},
		{Name: "data/random", Body: string(random)},
		{Name: "data/text", Body: strings.Repeat("all work and no play ", 20000)},
		{Name: "dev/", Type: tar.TypeDir},
		{Name: "dev/null", Type: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3},
		{Name: "dev/fifo", Type: tar.TypeFifo, Mode: 0o600, UID: 1000, GID: 1000},
		{Name: "link", Type: tar.TypeSymlink, Link: "etc/conf"},
	}
}

// verifyOutcome is what one `ocirender verify --json` run found.
type verifyOutcome struct {
	code  int
	diffs []string // "kind path field"
	out   string
}

func runVerify(t *testing.T, ctx context.Context, output string, args ...string) verifyOutcome {
	t.Helper()
	r, err := run(ctx, ocirenderBin(t), append([]string{"verify", "-q", "--json", output}, args...)...)
	if err != nil {
		t.Fatalf("ocirender verify: %v", err)
	}
	o := verifyOutcome{code: r.code, out: string(r.stdout) + string(r.stderr)}
	if r.code == 2 {
		return o
	}
	var doc struct {
		Differences []struct{ Kind, Path, Field string }
	}
	if err := json.Unmarshal(r.stdout, &doc); err != nil {
		t.Fatalf("verify --json: %v\n%s", err, r.stdout)
	}
	for _, d := range doc.Differences {
		o.diffs = append(o.diffs, strings.TrimSpace(d.Kind+" "+d.Path+" "+d.Field))
	}
	return o
}

// change is one thing done to an output, and what verify must then say.
type change struct {
	name string
	want []string // the differences, as "kind path field"
}

var changes = []change{
	{"one flipped byte", []string{"~ etc/hostname digest"}},
	{"one mode bit", []string{"~ etc/hostname mode"}},
	{"xattr removed", []string{"~ etc/conf xattr user.note"}},
	{"xattr changed", []string{"~ etc/conf xattr user.keep"}},
	{"broken hard link", []string{"~ hl/a hardlink", "~ hl/b hardlink"}},
	{"extra file", []string{"+ etc/extra"}},
	{"missing file", []string{"- etc/hostname"}},
}

// changeTree makes change c to the tree at root, restoring the mtimes it would disturb.
func changeTree(t *testing.T, root string, c change) {
	t.Helper()
	at := func(p string) string { return filepath.Join(root, p) }
	keep := keepMtimes(t, at("etc"), at("etc/hostname"), at("hl"), at("hl/a"))
	defer keep()
	switch c.name {
	case "one flipped byte":
		check(t, os.WriteFile(at("etc/hostname"), []byte("verifz\n"), 0o644))
	case "one mode bit":
		check(t, os.Chmod(at("etc/hostname"), 0o645))
	case "xattr removed":
		check(t, unix.Removexattr(at("etc/conf"), "user.note"))
	case "xattr changed":
		check(t, unix.Setxattr(at("etc/conf"), "user.keep", []byte("K"), 0))
	case "broken hard link":
		check(t, os.Remove(at("hl/b")))
		mustRun(t, testContext(t), "cp", "-a", at("hl/a"), at("hl/b"))
	case "extra file":
		check(t, os.WriteFile(at("etc/extra"), nil, 0o644))
	case "missing file":
		check(t, os.Remove(at("etc/hostname")))
	default:
		t.Fatalf("unknown change %q", c.name)
	}
}

// keepMtimes records the mtimes of paths and returns a func that puts them back (on those
// that still exist).
func keepMtimes(t *testing.T, paths ...string) func() {
	t.Helper()
	times := map[string]unix.Timespec{}
	for _, p := range paths {
		var st unix.Stat_t
		check(t, unix.Lstat(p, &st))
		times[p] = st.Mtim
	}
	return func() {
		for p, ts := range times {
			if _, err := os.Lstat(p); err == nil {
				check(t, unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW))
			}
		}
	}
}

// changeTar rewrites the tar at src to dst with change c, with archive/tar.
func changeTar(t *testing.T, src, dst string, c change) {
	t.Helper()
	in, err := os.Open(src)
	check(t, err)
	defer in.Close()
	var out bytes.Buffer
	tr, tw := tar.NewReader(in), tar.NewWriter(&out)
	var linked *tar.Header
	var linkedBody []byte
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		check(t, err)
		body, err := io.ReadAll(tr)
		check(t, err)
		switch {
		case h.Name == "etc/hostname" && c.name == "one flipped byte":
			body[5] ^= 1
		case h.Name == "etc/hostname" && c.name == "one mode bit":
			h.Mode ^= 0o001
		case h.Name == "etc/hostname" && c.name == "missing file":
			continue
		case h.Name == "etc/conf" && c.name == "xattr removed":
			delete(h.PAXRecords, "SCHILY.xattr.user.note")
			delete(h.Xattrs, "user.note") //nolint:staticcheck // the writer still merges it
		case h.Name == "etc/conf" && c.name == "xattr changed":
			h.PAXRecords["SCHILY.xattr.user.keep"] = "K"
			delete(h.Xattrs, "user.keep") //nolint:staticcheck
		case h.Name == "hl/a":
			linked, linkedBody = h, body
		case h.Name == "hl/b" && c.name == "broken hard link":
			copy := *linked
			copy.Name = h.Name
			h, body = &copy, linkedBody
		}
		check(t, tw.WriteHeader(h))
		_, err = tw.Write(body)
		check(t, err)
	}
	if c.name == "extra file" {
		check(t, tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "etc/extra", Mode: 0o644, Format: tar.FormatPAX}))
	}
	check(t, tw.Close())
	check(t, os.WriteFile(dst, out.Bytes(), 0o644))
}

func check(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// mksquashfsArgs packs a tree fast (zstd level 1), keeping everything it can.
func mksquashfsArgs(src, img string) []string {
	return []string{src, img, "-noappend", "-quiet", "-no-progress", "-comp", "zstd", "-Xcompression-level", "1"}
}

func sameDiffs(t *testing.T, what string, got verifyOutcome, want []string) {
	t.Helper()
	if got.code != min(len(want), 1) || !slices.Equal(got.diffs, want) {
		t.Errorf("%s: verify exit %d, differences %q; want exit %d, %q\n%s", what, got.code, got.diffs, min(len(want), 1), want, got.out)
	}
}

// TestVerifyCatchesChanges exports a small image in each format, requires verify to pass
// the untouched output, then changes one thing at a time (a byte, a mode bit, an xattr,
// a hard link, an extra and a missing file) and requires verify to report exactly that,
// with exit status 1. Squashfs outputs are changed by unsquashfs, changing the tree and
// mksquashfs; a byte of our image is also patched in place.
func TestVerifyCatchesChanges(t *testing.T) {
	requireRoot(t, "the dir export and unsquashfs set owners, devices and security.* xattrs")
	requireGNUTar(t)
	ocirenderBin(t)
	ctx := testContext(t)
	image := filepath.Join(t.TempDir(), "v")
	writeImage(t, image, "v", imagetest.GzipBlob(e2e.Layer(verifyEntries()...)))
	imageArgs := []string{"--image", image, "--ref", "v"}
	work := t.TempDir()

	t.Run("dir", func(t *testing.T) {
		for _, c := range append([]change{{name: "untouched"}}, changes...) {
			out := filepath.Join(work, "dir-"+strings.ReplaceAll(c.name, " ", "-"))
			mustRun(t, ctx, ocirenderBin(t), exportArgs("dir", out, image, "v")...)
			if c.want != nil {
				changeTree(t, out, c)
			}
			sameDiffs(t, c.name, runVerify(t, ctx, out, imageArgs...), c.want)
		}
	})
	t.Run("tar", func(t *testing.T) {
		orig := filepath.Join(work, "orig.tar")
		mustRun(t, ctx, ocirenderBin(t), exportArgs("tar", orig, image, "v")...)
		sameDiffs(t, "untouched", runVerify(t, ctx, orig, imageArgs...), nil)
		for _, c := range changes {
			out := filepath.Join(work, strings.ReplaceAll(c.name, " ", "-")+".tar")
			changeTar(t, orig, out, c)
			sameDiffs(t, c.name, runVerify(t, ctx, out, imageArgs...), c.want)
		}
		// A tar that GNU tar made of the extracted tree passes too.
		x := filepath.Join(work, "x")
		check(t, os.Mkdir(x, 0o755))
		mustRun(t, ctx, "tar", gnuTarArgs(orig, x)...)
		gnu := filepath.Join(work, "gnu.tar")
		mustRun(t, ctx, "tar", "--xattrs", "--xattrs-include=*", "--numeric-owner", "--format=posix", "-cf", gnu, "-C", x, ".")
		sameDiffs(t, "GNU tar of the extraction", runVerify(t, ctx, gnu, imageArgs...), nil)
	})
	t.Run("squashfs", func(t *testing.T) {
		requireTools(t, "unsquashfs", "mksquashfs")
		ours := filepath.Join(work, "ours.sqfs")
		mustRun(t, ctx, ocirenderBin(t), squashfsArgs(ours, image, "v")...)
		sameDiffs(t, "untouched", runVerify(t, ctx, ours, imageArgs...), nil)
		for _, c := range append([]change{{name: "untouched, through unsquashfs and mksquashfs"}}, changes...) {
			tree := filepath.Join(t.TempDir(), "x")
			mustRun(t, ctx, "unsquashfs", "-n", "-d", tree, ours)
			if c.want != nil {
				changeTree(t, tree, c)
			}
			img := filepath.Join(t.TempDir(), "changed.sqfs")
			mustRun(t, ctx, "mksquashfs", mksquashfsArgs(tree, img)...)
			sameDiffs(t, c.name, runVerify(t, ctx, img, imageArgs...), c.want)
		}
		// One byte of the random file's data, stored raw, patched in our image: bad content.
		b, err := os.ReadFile(ours)
		check(t, err)
		random := verifyEntries()[10].Body
		at := bytes.Index(b, []byte(random[100000:100064]))
		if at < 0 {
			t.Fatal("the random file's bytes are not stored raw in the image")
		}
		b[at] ^= 0x40
		patched := filepath.Join(work, "patched.sqfs")
		check(t, os.WriteFile(patched, b, 0o644))
		sameDiffs(t, "a byte of raw data patched", runVerify(t, ctx, patched, imageArgs...), []string{"~ data/random digest"})
		// A byte of the (compressed) inode table: a decoding error (exit 2) or a difference.
		b[at] ^= 0x40
		b[binary.LittleEndian.Uint64(b[64:])+10] ^= 0xff
		check(t, os.WriteFile(patched, b, 0o644))
		if o := runVerify(t, ctx, patched, imageArgs...); o.code == 0 {
			t.Errorf("verify of an image with a patched inode table: exit 0, want 1 or 2\n%s", o.out)
		}
	})
	t.Run("stdin and errors", func(t *testing.T) {
		orig := filepath.Join(work, "orig.tar")
		f, err := os.Open(orig)
		check(t, err)
		defer f.Close()
		cmd := exec.CommandContext(ctx, ocirenderBin(t), "verify", "-q", "-", "--image", image, "--ref", "v")
		cmd.Stdin = f
		if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "(tar) matches image") {
			t.Errorf("verify - < tar: %v\n%s", err, out)
		}
		for _, args := range [][]string{
			{filepath.Join(work, "none"), "--image", image},
			{orig, "--image", filepath.Join(work, "none")},
			{orig},
		} {
			if o := runVerify(t, ctx, args[0], args[1:]...); o.code != 2 {
				t.Errorf("verify %q: exit %d, want 2\n%s", args, o.code, o.out)
			}
		}
	})
}

// TestVerifyDebian: verify passes our untouched outputs of the Debian image in all three
// formats, and mksquashfs's image of our directory export; our squashfs reader sees what
// the kernel's loop mount shows of both images.
func TestVerifyDebian(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode: builds and exports the Debian image")
	}
	requireRoot(t, "debootstrap, the dir export's owners and devices, mount -o loop")
	requireTools(t, "umoci", "debootstrap", "setfattr", "pigz", "zstd", "bash", "mksquashfs")
	ocirenderBin(t)
	ctx := testContext(t)
	layout := buildDebianImage(t, ctx)
	const tag = "latest"
	imageArgs := []string{"--image", layout, "--ref", tag}
	work := t.TempDir()
	dir := filepath.Join(work, "dir")
	outputs := map[string]string{
		"dir":      dir,
		"tar":      filepath.Join(work, "out.tar"),
		"squashfs": filepath.Join(work, "out.sqfs"),
	}
	for _, format := range []string{"dir", "tar", "squashfs"} {
		start := time.Now()
		mustRun(t, ctx, ocirenderBin(t), "export", "-q", "--format", format, "-o", outputs[format], "--ref", tag, layout)
		exported := time.Since(start)
		start = time.Now()
		o := runVerify(t, ctx, outputs[format], imageArgs...)
		t.Logf("%s: export %v, verify %v", format, exported.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
		sameDiffs(t, "verify of the untouched "+format, o, nil)
	}
	// mksquashfs stores an mtime outside 1970..2106 modulo 2^32 seconds where our writer
	// clamps it (squashfs can hold neither): verify must say so, and nothing else.
	mk := filepath.Join(work, "mksquashfs.sqfs")
	mustRun(t, ctx, "mksquashfs", mksquashfsArgs(dir, mk)...)
	var wrapped []string
	for _, e := range scan(t, dir) {
		if e.MtimeNs < 0 || e.MtimeNs >= math.MaxUint32*1e9+1e9 {
			wrapped = append(wrapped, "~ "+e.Path+" mtime")
		}
	}
	sameDiffs(t, "verify of mksquashfs's image of our dir export", runVerify(t, ctx, mk, imageArgs...), wrapped)

	for _, img := range []string{outputs["squashfs"], mk} {
		t.Run("reader vs kernel "+filepath.Base(img), func(t *testing.T) {
			f, err := os.Open(img)
			check(t, err)
			defer f.Close()
			fi, err := f.Stat()
			check(t, err)
			sq, err := squashfs.Open(f, fi.Size())
			check(t, err)
			ours, err := verify.ScanSquashfs(ctx, sq, 0)
			check(t, err)
			kernel := scan(t, mountSquashfs(t, img))
			reportDiffs(t, "our squashfs reader (got) against the kernel's mount (want)", verify.Compare(kernel, ours, verify.Options{}))
		})
	}
}

// TestDiffDebian: `ocirender diff` of two tags of the Debian image reports exactly what
// verify.Compare finds between their `umoci unpack` trees: every path added and removed,
// every field changed with both values. (A content whose size changed is reported by its
// size only: diff reads no content it does not need.)
func TestDiffDebian(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode: builds and unpacks the Debian image")
	}
	requireRoot(t, "debootstrap and umoci unpack")
	requireTools(t, "umoci", "debootstrap", "setfattr", "pigz", "zstd", "bash")
	ocirenderBin(t)
	ctx := testContext(t)
	layout := buildDebianImage(t, ctx)
	for _, pair := range [][2]string{{"base", "latest"}, {"edits", "rework"}} {
		t.Run(pair[0]+"-"+pair[1], func(t *testing.T) {
			if pair[0] == "edits" && (umociTrees[layout+":edits"] == nil || umociTrees[layout+":rework"] == nil) {
				// Two more umoci unpacks would cost ~20 s; TestDebianImageMatchesUmoci (run
				// before this test in the same process) leaves their trees cached.
				t.Skip("skipped: edits and rework are compared when TestDebianImageMatchesUmoci has unpacked them in this run")
			}
			a := umociTree(t, ctx, layout, pair[0])
			b := umociTree(t, ctx, layout, pair[1])
			var want []string
			sizes := map[string]bool{}
			diffs := verify.Compare(a, b, verify.Options{})
			for _, d := range diffs {
				if d.Field == "size" {
					sizes[d.Path] = true
				}
			}
			for _, d := range diffs {
				if debianNoise(d) || d.Field == "digest" && sizes[d.Path] {
					continue
				}
				want = append(want, d.String())
			}
			start := time.Now()
			r, err := run(ctx, ocirenderBin(t), "diff", "-q", "--json", layout, "--ref-a", pair[0], "--ref-b", pair[1])
			if err != nil || r.code != min(len(want), 1) {
				t.Fatalf("ocirender diff: %v %v", err, r)
			}
			t.Logf("ocirender diff %s %s: %v, %d differences", pair[0], pair[1], time.Since(start).Round(time.Millisecond), len(want))
			var doc struct {
				Differences []struct {
					Kind, Path, Field, A, B string
					PathBase64              []byte `json:"path_base64"`
				}
			}
			check(t, json.Unmarshal(r.stdout, &doc))
			var got []string
			for _, d := range doc.Differences {
				if d.PathBase64 != nil { // the path is not UTF-8: JSON has its bytes here
					d.Path = string(d.PathBase64)
				}
				v := verify.Difference{Kind: d.Kind[0], Path: d.Path, Field: d.Field, Want: d.A, Got: d.B}
				if !debianNoise(v) {
					got = append(got, v.String())
				}
			}
			if !slices.Equal(got, want) {
				var missing, extra []string
				for _, s := range want {
					if !slices.Contains(got, s) {
						missing = append(missing, s)
					}
				}
				for _, s := range got {
					if !slices.Contains(want, s) {
						extra = append(extra, s)
					}
				}
				t.Errorf("ocirender diff differs from a diff of the umoci trees:\nonly umoci's (%d):\n%s\nonly ours (%d):\n%s",
					len(missing), strings.Join(first(missing, 30), "\n"), len(extra), strings.Join(first(extra, 30), "\n"))
			}
		})
	}
}

func first(s []string, n int) []string { return s[:min(len(s), n)] }
