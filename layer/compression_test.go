package layer

import (
	"errors"
	"testing"
)

func TestCompressionString(t *testing.T) {
	tests := []struct {
		c    Compression
		want string
	}{
		{Uncompressed, "uncompressed"},
		{Gzip, "gzip"},
		{Zstd, "zstd"},
		{Bzip2, "bzip2"},
		{Xz, "xz"},
		{Compression(42), "compression(42)"},
		{Compression(-1), "compression(-1)"},
	}
	for _, tt := range tests {
		if got := tt.c.String(); got != tt.want {
			t.Errorf("Compression(%d).String() = %q, want %q", int(tt.c), got, tt.want)
		}
	}
}

func TestDetect(t *testing.T) {
	tests := []struct {
		name string
		head string
		want Compression
	}{
		{"empty", "", Uncompressed},
		{"gzip", "\x1f\x8b\x08\x00\x00\x00\x00\x00", Gzip},
		{"gzip magic only", "\x1f\x8b\x08", Gzip},
		{"gzip, not deflate", "\x1f\x8b\x07\x00", Uncompressed},
		{"gzip cut", "\x1f\x8b", Uncompressed},
		{"zstd", "\x28\xb5\x2f\xfd\x04\x58", Zstd},
		{"zstd skippable 0", "\x50\x2a\x4d\x18\x00\x00\x00\x00", Zstd},
		{"zstd skippable f", "\x5f\x2a\x4d\x18", Zstd},
		{"not skippable", "\x60\x2a\x4d\x18", Uncompressed},
		{"zstd cut", "\x28\xb5\x2f", Uncompressed},
		{"bzip2", "BZh91AY&SY\x00", Bzip2},
		{"bzip2 empty stream", "BZh1\x17\x72\x45\x38\x50\x90", Bzip2},
		{"bzip2 bad level", "BZh01AY&SY", Uncompressed},
		{"tar named BZh9", "BZh9-notes.txt\x00\x00", Uncompressed},
		{"bzip2 cut", "BZh9", Uncompressed},
		{"xz", "\xfd7zXZ\x00\x00\x04", Xz},
		{"xz cut", "\xfd7zXZ", Uncompressed},
		{"tar", "usr/\x00\x00\x00\x00", Uncompressed},
		{"zip", "PK\x03\x04", Uncompressed},
	}
	for _, tt := range tests {
		if got := Detect([]byte(tt.head)); got != tt.want {
			t.Errorf("Detect(%s %q) = %v, want %v", tt.name, tt.head, got, tt.want)
		}
	}
}

func TestFromMediaType(t *testing.T) {
	tests := []struct {
		mt      string
		want    Compression
		ok      bool
		wantErr bool
	}{
		{"application/vnd.oci.image.layer.v1.tar", Uncompressed, true, false},
		{"application/vnd.oci.image.layer.v1.tar+gzip", Gzip, true, false},
		{"application/vnd.oci.image.layer.v1.tar+zstd", Zstd, true, false},
		{"application/vnd.oci.image.layer.nondistributable.v1.tar", Uncompressed, true, false},
		{"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", Gzip, true, false},
		{"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", Zstd, true, false},
		{"application/vnd.docker.image.rootfs.diff.tar", Uncompressed, true, false},
		{"application/vnd.docker.image.rootfs.diff.tar.gzip", Gzip, true, false},
		{"application/vnd.docker.image.rootfs.diff.tar.zstd", Zstd, true, false},
		{"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", Gzip, true, false},
		{"application/vnd.oci.image.layer.v1.tar+xz", Xz, true, false},
		{"application/vnd.oci.image.layer.v1.tar+bzip2", Bzip2, true, false},
		{"Application/VND.OCI.Image.Layer.v1.Tar+Gzip", Gzip, true, false},
		{"application/vnd.oci.image.layer.v1.tar+gzip; foo=bar", Gzip, true, false},
		{"", Uncompressed, false, false},
		{"application/octet-stream", Uncompressed, false, false},
		{"  ", Uncompressed, false, false},
		{"application/vnd.oci.image.config.v1+json", Uncompressed, false, true},
		{"application/vnd.oci.image.manifest.v1+json", Uncompressed, false, true},
		{"application/vnd.oci.image.index.v1+json", Uncompressed, false, true},
		{"application/vnd.docker.container.image.v1+json", Uncompressed, false, true},
		{"application/vnd.docker.distribution.manifest.v2+json", Uncompressed, false, true},
		{"application/vnd.oci.empty.v1+json", Uncompressed, false, true},
		{"application/vnd.oci.image.layer.v1.tar+gzip+encrypted", Uncompressed, false, true},
		{"application/vnd.cncf.helm.chart.content.v1.tar+gzip", Uncompressed, false, true},
		{"text/plain", Uncompressed, false, true},
	}
	for _, tt := range tests {
		c, ok, err := FromMediaType(tt.mt)
		if (err != nil) != tt.wantErr || c != tt.want || ok != tt.ok {
			t.Errorf("FromMediaType(%q) = %v, %v, %v; want %v, %v, error %v", tt.mt, c, ok, err, tt.want, tt.ok, tt.wantErr)
		}
		if err != nil && !errors.Is(err, ErrMediaType) {
			t.Errorf("FromMediaType(%q) error %v does not wrap ErrMediaType", tt.mt, err)
		}
	}
}
