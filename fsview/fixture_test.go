package fsview

import (
	"archive/tar"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ocirender/ocirender"
	"github.com/ocirender/ocirender/index"
	"github.com/ocirender/ocirender/internal/imagetest"
)

// Files of the test image whose contents the tests check byte for byte.
var (
	bigGzip = pseudoRandom(1, 3<<20+12345) // spans several gzip checkpoints
	bigZstd = pseudoRandom(2, 1<<20+777)   // in the zstd upper layer
)

// pseudoRandom returns n bytes that compress somewhat (a reader of a gzip layer has to work
// for them) but never repeat in a way that would hide an offset error.
func pseudoRandom(seed uint64, n int) string {
	rng := rand.New(rand.NewPCG(seed, seed))
	words := []string{"alpha ", "beta ", "gamma ", "delta\n", "epsilon ", "zeta ", "eta ", "theta\t"}
	b := make([]byte, 0, n+32)
	for len(b) < n {
		if rng.IntN(8) == 0 {
			b = strconv.AppendUint(b, rng.Uint64(), 10)
			b = append(b, ' ')
		} else {
			b = append(b, words[rng.IntN(len(words))]...)
		}
	}
	return string(b[:n])
}

var (
	nsTime   = time.Unix(1600000000, 123456789)
	oldTime  = time.Unix(-86400*365, 250) // before 1970
	capValue = "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
	longXval = strings.Repeat("x", 3000)
)

// many is the number of files in /many, enough for several getdents calls.
const many = 300

// images holds the test images, built and opened once per process (building and scanning
// them is most of the cost of these tests under the race detector). Tests only read them.
var images struct {
	sync.Mutex
	work string
	open map[bool]*ocirender.Image
}

func TestMain(m *testing.M) {
	code := m.Run()
	images.Lock()
	for _, img := range images.open {
		img.Close()
	}
	if images.work != "" {
		os.RemoveAll(images.work)
	}
	images.Unlock()
	os.Exit(code)
}

// testImage returns a three-layer image (gzip, zstd, uncompressed) holding one of everything
// the view has to show, opened with its content readable; with xattrs, some of its files
// carry extended attributes.
func testImage(t testing.TB, xattrs bool) *ocirender.Image {
	t.Helper()
	images.Lock()
	defer images.Unlock()
	if img := images.open[xattrs]; img != nil {
		return img
	}
	if images.work == "" {
		dir, err := os.MkdirTemp("", "fsview-test-")
		if err != nil {
			t.Fatal(err)
		}
		images.work = dir
		images.open = map[bool]*ocirender.Image{}
	}
	img := buildImage(t, filepath.Join(images.work, fmt.Sprint("xattrs-", xattrs)), xattrs)
	images.open[xattrs] = img
	return img
}

func buildImage(t testing.TB, dir string, xattrs bool) *ocirender.Image {
	t.Helper()
	base := []imagetest.Entry{
		imagetest.Dir("etc"),
		imagetest.Reg("etc/hostname", "box\n").With(func(f *imagetest.Entry) { f.Mtime = nsTime }),
		imagetest.Reg("etc/old", "old\n").With(func(f *imagetest.Entry) { f.Mtime = oldTime }),
		imagetest.Reg("usr/bin/ping", "ping").With(func(f *imagetest.Entry) {
			f.Mode = 0o4755
			if xattrs {
				f.Xattrs = map[string]string{"security.capability": capValue}
			}
		}),
		imagetest.Reg("usr/bin/owned", "o").With(func(f *imagetest.Entry) { f.UID, f.GID = 1000000, 65534; f.Mode = 0o2755 }),
		imagetest.Dir("tmp").With(func(f *imagetest.Entry) { f.Mode = 0o1777 }),
		imagetest.Reg("big/gzip", bigGzip),
		imagetest.Reg("empty", ""),
		imagetest.Sym("link", "etc/hostname"),
		imagetest.Sym("dangling", "/nowhere/at/all"),
		imagetest.Reg("hl/a", "shared\n"),
		imagetest.Hard("hl/b", "hl/a"),
		imagetest.Hard("hl2/c", "hl/a"),
		{Name: "dev/null", Type: tar.TypeChar, Devmajor: 1, Devminor: 3, Mode: 0o666},
		{Name: "dev/sda1", Type: tar.TypeBlock, Devmajor: 8, Devminor: 1, Mode: 0o660},
		{Name: "dev/wide", Type: tar.TypeChar, Devmajor: 511, Devminor: 300000, Mode: 0o600},
		{Name: "fifo", Type: tar.TypeFifo, Mode: 0o644},
		imagetest.Reg("names/B", "B"),
		imagetest.Reg("names/a", "a"),
		imagetest.Reg("names/_", "_"),
		imagetest.Reg("names/a b", "space"),
		imagetest.Reg("names/new\nline", "nl"),
		imagetest.Reg("names/\xff\xfe", "bytes"),
		imagetest.Reg("names/Z", "Z"),
		imagetest.Reg("gone", "whited out above"),
	}
	if xattrs {
		base = append(base,
			imagetest.Reg("x/file", "x").With(func(f *imagetest.Entry) {
				f.Xattrs = map[string]string{"user.bin": "\x00\xff\x00", "user.long": longXval, "trusted.t": "T"}
			}),
			imagetest.Dir("x/dir").With(func(f *imagetest.Entry) { f.Xattrs = map[string]string{"user.dir": "d"} }),
		)
	}
	for i := range many {
		base = append(base, imagetest.Reg(fmt.Sprintf("many/f%03d", i), fmt.Sprint(i)))
	}
	upper := []imagetest.Entry{
		imagetest.Reg("big/zstd", bigZstd),
		imagetest.Whiteout("gone"),
		imagetest.Reg("etc/motd", "upper\n"),
	}
	// The third layer, uncompressed (read in place): a file of mode 0000.
	top := imagetest.Layer(imagetest.Entry{Name: "etc/shadow", Body: "secret\n", Mode: imagetest.NoPerm, Mtime: nsTime})
	if _, err := imagetest.WriteLayout(dir, "", imagetest.GzipBlob(imagetest.Layer(base...)),
		imagetest.ZstdBlob(imagetest.Layer(upper...)), imagetest.TarBlob(top)); err != nil {
		t.Fatal(err)
	}
	img, err := ocirender.Open(context.Background(), dir, ocirender.Options{Content: true, TempDir: images.work})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return img
}

// lookup resolves p in ix without following symlinks, or fails the test.
func lookup(t testing.TB, ix *index.Index, p string) index.ID {
	t.Helper()
	id, err := ix.Lookup(p)
	if err != nil {
		t.Fatalf("index lookup %q: %v", p, err)
	}
	return id
}

// content is what the test image's regular file at p holds.
func content(t testing.TB, img *ocirender.Image, p string) []byte {
	t.Helper()
	in := img.Index.Entry(lookup(t, img.Index, p))
	b := make([]byte, in.Size)
	if in.Size > 0 {
		if _, err := img.Content()[in.Layer].ReadAt(b, in.Offset); err != nil {
			t.Fatalf("reading %s from layer %d: %v", p, in.Layer, err)
		}
	}
	return b
}
