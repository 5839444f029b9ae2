package image

import (
	"errors"
	"runtime"
	"strings"
	"testing"
)

func TestParseDigest(t *testing.T) {
	hex64 := strings.Repeat("ab", 32)
	cases := []struct {
		in      string
		wantErr error
	}{
		{"sha256:" + hex64, nil},
		{"sha512:" + hex64 + hex64, nil},
		{"sha256:../../etc/passwd", ErrInvalid},
		{"sha256:" + hex64[:63], ErrInvalid},
		{"sha256:" + hex64 + "0", ErrInvalid},
		{"sha256:" + strings.ToUpper(hex64), ErrInvalid},
		{"sha256:" + hex64[:62] + "/x", ErrInvalid},
		{"sha512:" + hex64, ErrInvalid},
		{"md5:d41d8cd98f00b204e9800998ecf8427e", ErrUnsupported},
		{"../sha256:" + hex64, ErrUnsupported},
		{hex64, ErrInvalid},
		{"", ErrInvalid},
		{"sha256:", ErrInvalid},
	}
	for _, c := range cases {
		d, err := parseDigest(c.in)
		if c.wantErr == nil {
			if err != nil || string(d) != c.in {
				t.Errorf("parseDigest(%q) = %q, %v, want ok", c.in, d, err)
			}
			continue
		}
		if !errors.Is(err, c.wantErr) {
			t.Errorf("parseDigest(%q) = %q, %v, want %v", c.in, d, err, c.wantErr)
		}
	}
}

func TestCleanName(t *testing.T) {
	cases := []struct {
		in, want string // want "" means an error
	}{
		{"index.json", "index.json"},
		{"./index.json", "index.json"},
		{"/blobs//sha256/x", "blobs/sha256/x"},
		{"a/./b/", "a/b"},
		{"a/../b", "b"},
		{"a/b/../../c", "c"},
		{"..", ""},
		{"../x", ""},
		{"a/../../x", ""},
		{"/../x", ""},
		{"", ""},
		{".", ""},
		{"./", ""},
		{"a\x00b", ""},
	}
	for _, c := range cases {
		got, err := cleanName(c.in)
		if c.want == "" {
			if err == nil {
				t.Errorf("cleanName(%q) = %q, want error", c.in, got)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("cleanName(%q) = %q, %v, want %q", c.in, got, err, c.want)
		}
	}
}

func TestPlatformRank(t *testing.T) {
	cases := []struct {
		want, have string
		fits       bool
	}{
		{"linux/amd64", "linux/amd64", true},
		{"linux/amd64", "linux/x86_64", true},
		{"linux/amd64", "linux/amd64/v1", true},
		{"linux/amd64", "linux/amd64/v3", false},
		{"linux/amd64/v3", "linux/amd64", true},
		{"linux/amd64/v3", "linux/amd64/v2", true},
		{"linux/amd64", "linux/arm64", false},
		{"linux/amd64", "windows/amd64", false},
		{"linux/arm64", "linux/arm64/v8", true},
		{"linux/arm64/v8", "linux/arm64", true},
		{"linux/arm64/v8", "linux/aarch64", true},
		{"linux/arm64", "linux/arm64/v9", false},
		{"linux/arm", "linux/arm/v7", true},
		{"linux/arm/v7", "linux/arm/v6", true},
		{"linux/arm/v6", "linux/arm/v7", false},
		{"linux/arm/v7", "linux/armhf", true},
		{"LINUX/AMD64", "linux/amd64", true},
	}
	for _, c := range cases {
		w, err := parsePlatform(c.want)
		if err != nil {
			t.Fatal(err)
		}
		h, _ := parsePlatform(c.have)
		if got := w.rank(h) > 0; got != c.fits {
			t.Errorf("platform %s accepts %s = %v, want %v", c.want, c.have, got, c.fits)
		}
	}
	// An exact variant beats an older level.
	w, _ := parsePlatform("linux/amd64/v3")
	v3, _ := parsePlatform("linux/amd64/v3")
	v2, _ := parsePlatform("linux/amd64/v2")
	v1, _ := parsePlatform("linux/amd64")
	if !(w.rank(v3) > w.rank(v2) && w.rank(v2) > w.rank(v1)) {
		t.Errorf("ranks for amd64/v3: v3 %d, v2 %d, v1 %d: want decreasing", w.rank(v3), w.rank(v2), w.rank(v1))
	}
	host, err := parsePlatform("")
	if err != nil || host.os != runtime.GOOS {
		t.Errorf(`parsePlatform("") = %v, %v, want the host`, host, err)
	}
	for _, bad := range []string{"linux", "linux/", "/amd64", "linux/amd64/", "a/b/c/d"} {
		if _, err := parsePlatform(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("parsePlatform(%q) = %v, want ErrInvalid", bad, err)
		}
	}
}

func TestNormalizeRef(t *testing.T) {
	cases := []struct{ in, norm, tag string }{
		{"busybox", "busybox:latest", "busybox"},
		{"busybox:1.36", "busybox:1.36", "1.36"},
		{"docker.io/library/busybox:latest", "busybox:latest", "latest"},
		{"index.docker.io/library/busybox", "busybox:latest", ""},
		{"library/busybox:1", "busybox:1", "1"},
		{"docker.io/foo/bar:2", "foo/bar:2", "2"},
		{"localhost:5000/foo", "localhost:5000/foo:latest", ""},
		{"localhost:5000/foo:v1", "localhost:5000/foo:v1", "v1"},
		{"ghcr.io/a/b@sha256:00", "ghcr.io/a/b@sha256:00", ""},
		{"latest", "latest:latest", "latest"},
	}
	for _, c := range cases {
		if got := normalizeRef(c.in); got != c.norm {
			t.Errorf("normalizeRef(%q) = %q, want %q", c.in, got, c.norm)
		}
		if got := tagOf(c.in); got != c.tag {
			t.Errorf("tagOf(%q) = %q, want %q", c.in, got, c.tag)
		}
	}
}
