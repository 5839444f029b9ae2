package ocirender_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ocirender/ocirender"
	"github.com/ocirender/ocirender/internal/imagetest"
	"github.com/ocirender/ocirender/internal/registrytest"
	"github.com/ocirender/ocirender/pull"
)

// TestPull: an image pulled from a registry converts to exactly what Convert makes of its
// layout, the blobs are kept for the next pull, and a second pull downloads nothing.
func TestPull(t *testing.T) {
	src := t.TempDir()
	_, _, blobs := fourLayers(t, src)
	want := filepath.Join(t.TempDir(), "want.sqfs")
	if err := ocirender.Convert(context.Background(), src, ocirender.Spec{Format: ocirender.FormatSquashfs, Path: want}); err != nil {
		t.Fatal(err)
	}
	wantBytes, _ := os.ReadFile(want)
	tr := registrytest.New(t, "", "")
	ref := tr.Push(t, src, "", "four:v1")
	cache := t.TempDir()
	for round := range 2 {
		if round == 1 {
			t.Chdir(t.TempDir()) // the cache entry of a pulled image does not depend on it
		}
		out := filepath.Join(t.TempDir(), "got.sqfs")
		before := tr.BlobGets.Load()
		_, err := ocirender.Pull(context.Background(), ref, ocirender.Spec{Format: ocirender.FormatSquashfs, Path: out,
			Open: ocirender.Options{CacheDir: cache}}, pull.Options{Jobs: 2})
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if got, _ := os.ReadFile(out); !bytes.Equal(got, wantBytes) {
			t.Fatalf("round %d: the pulled squashfs differs from the converted layout's", round)
		}
		gets := tr.BlobGets.Load() - before
		if round == 0 && gets < 4 || round == 1 && gets > 1 { // config, plus 4 layers the first time
			t.Errorf("round %d: %d blob downloads", round, gets)
		}
	}
	if entries, _ := filepath.Glob(filepath.Join(cache, "index", "*")); len(entries) != 1 {
		t.Errorf("index cache entries %v, want one", entries)
	}
	// A cached blob spoiled in place (same size) is found, removed and downloaded again.
	blob := filepath.Join(cache, "blobs", "sha256", filepath.Base(blobs[0]))
	data, _ := os.ReadFile(blob)
	data[len(data)/2] ^= 1
	os.WriteFile(blob, data, 0o600)
	var notices []string
	out := filepath.Join(t.TempDir(), "healed.sqfs")
	before := tr.BlobGets.Load()
	if _, err := ocirender.Pull(context.Background(), ref, ocirender.Spec{Format: ocirender.FormatSquashfs, Path: out,
		Open: ocirender.Options{CacheDir: cache, Notice: func(m string) { notices = append(notices, m) }}}, pull.Options{}); err != nil {
		t.Fatalf("pull over a spoiled cached blob: %v", err)
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, wantBytes) {
		t.Error("the squashfs pulled over a spoiled cached blob differs")
	}
	if got, _ := os.ReadFile(blob); !bytes.Equal(got, mustRead(t, blobs[0])) {
		t.Error("the spoiled cached blob was not replaced")
	}
	if tr.BlobGets.Load()-before < 2 || !strings.Contains(strings.Join(notices, "\n"), "corrupt") {
		t.Errorf("downloads %d, notices %q", tr.BlobGets.Load()-before, notices)
	}
	// Without a cache: a mounted-style pull returns the open image, and leaves no blobs.
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // where the blobs of a pull without cache go
	im, err := ocirender.Pull(context.Background(), ref, ocirender.Spec{Open: ocirender.Options{TempDir: tmp}}, pull.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	if got, want := tarListing(t, im), tarListing(t, open(t, src)); got != want {
		t.Errorf("pulled image lists\n%s\nwant\n%s", got, want)
	}
	if left := entries(t, tmp); len(left) != 0 {
		t.Errorf("a pull without cache left %v", left)
	}
}

// TestPullAuth: a registry that wants basic auth, and one that wants bearer tokens, get them
// from the docker config; without credentials the pull fails with one clear line.
func TestPullAuth(t *testing.T) {
	t.Run("basic", func(t *testing.T) { testPullAuth(t, registrytest.New(t, "alice", "s3cret")) })
	t.Run("bearer", func(t *testing.T) { testPullAuth(t, registrytest.NewToken(t, "alice", "s3cret")) })
}

func testPullAuth(t *testing.T, tr *registrytest.Registry) {
	src := t.TempDir()
	fourLayers(t, src)
	ref := tr.Push(t, src, "", "private/four:v1")
	out := filepath.Join(t.TempDir(), "out.tar")
	spec := ocirender.Spec{Format: ocirender.FormatTar, Path: out}

	t.Setenv("DOCKER_CONFIG", t.TempDir())
	_, err := ocirender.Pull(context.Background(), ref, spec, pull.Options{})
	if err == nil || !strings.Contains(err.Error(), "UNAUTHORIZED") && !strings.Contains(err.Error(), "401") {
		t.Fatalf("pull without credentials: %v", err)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error of several lines: %q", err)
	}
	t.Logf("without credentials: %v", err)
	if _, err := os.Stat(out); err == nil {
		t.Error("output written without credentials")
	}

	cfg := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte("alice:s3cret"))
	os.WriteFile(filepath.Join(cfg, "config.json"), fmt.Appendf(nil, `{"auths":{%q:{"auth":%q}}}`, tr.Host(), auth), 0o600)
	t.Setenv("DOCKER_CONFIG", cfg)
	if _, err := ocirender.Pull(context.Background(), ref, spec, pull.Options{}); err != nil {
		t.Fatalf("pull with credentials: %v", err)
	}
	if fi, err := os.Stat(out); err != nil || fi.Size() == 0 {
		t.Fatalf("no output: %v", err)
	}
	os.Remove(out)

	// The same credentials from a credential helper named in the config.
	bin := t.TempDir()
	helper := fmt.Sprintf("#!/bin/sh\nread server\necho '{\"ServerURL\":\"'$server'\",\"Username\":\"alice\",\"Secret\":\"s3cret\"}'\n")
	os.WriteFile(filepath.Join(bin, "docker-credential-ocirendertest"), []byte(helper), 0o755)
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	os.WriteFile(filepath.Join(cfg, "config.json"), fmt.Appendf(nil, `{"credHelpers":{%q:"ocirendertest"}}`, tr.Host()), 0o600)
	if _, err := ocirender.Pull(context.Background(), ref, spec, pull.Options{}); err != nil {
		t.Fatalf("pull with a credential helper: %v", err)
	}
	if fi, err := os.Stat(out); err != nil || fi.Size() == 0 {
		t.Fatalf("no output: %v", err)
	}
}

// TestPullBadDigest: a registry that sends other bytes than a layer's digest fails the pull
// with a digest error; no output and no bad blob in the cache are left.
func TestPullBadDigest(t *testing.T) {
	src := t.TempDir()
	_, _, blobs := fourLayers(t, src)
	tr := registrytest.New(t, "", "")
	ref := tr.Push(t, src, "", "four:bad")
	tr.Spoil(filepath.Base(blobs[1]))
	cache := t.TempDir()
	outDir := t.TempDir()
	_, err := ocirender.Pull(context.Background(), ref, ocirender.Spec{Format: ocirender.FormatSquashfs, Path: filepath.Join(outDir, "x.sqfs"),
		Open: ocirender.Options{CacheDir: cache}}, pull.Options{})
	if err == nil || !strings.Contains(err.Error(), "digest") || !strings.Contains(err.Error(), "layer 1") {
		t.Fatalf("pull of a spoiled blob: %v", err)
	}
	t.Logf("spoiled blob: %v", err)
	if left := entries(t, outDir); len(left) != 0 {
		t.Errorf("left %v", left)
	}
	if _, err := os.Stat(filepath.Join(cache, "blobs", "sha256", filepath.Base(blobs[1]))); err == nil {
		t.Error("the spoiled blob is in the cache")
	}
	matches, _ := filepath.Glob(filepath.Join(cache, "blobs", "sha256", ".tmp-*"))
	if len(matches) != 0 {
		t.Errorf("temporary downloads left: %v", matches)
	}
}

// TestPullFailsFast: when one layer's scan fails (a blob of the right digest that is no tar)
// the other layer's download stops, instead of the error waiting for its last byte.
func TestPullFailsFast(t *testing.T) {
	src := t.TempDir()
	junk := bytes.Repeat([]byte("this is not a tar stream "), 100)
	big := imagetest.Layer(imagetest.Reg("big", strings.Repeat("0123456789abcdef", 512<<10))) // 8 MiB
	if _, err := imagetest.WriteLayout(src, "", imagetest.GzipBlob(junk), imagetest.TarBlob(big)); err != nil {
		t.Fatal(err)
	}
	tr := registrytest.New(t, "", "")
	ref := tr.Push(t, src, "", "junk:v1")
	tr.Throttle(1 << 20) // the big layer takes 8 s
	start := time.Now()
	_, err := ocirender.Pull(context.Background(), ref, ocirender.Spec{Format: ocirender.FormatTar, Path: filepath.Join(t.TempDir(), "out.tar")},
		pull.Options{Jobs: 2})
	took := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "layer 0") {
		t.Fatalf("Pull: %v, want an error about layer 0", err)
	}
	if took > 4*time.Second {
		t.Errorf("the failure took %v: the other download was not stopped", took.Round(time.Millisecond))
	}
	t.Logf("failed in %v: %v", took.Round(time.Millisecond), err)
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
