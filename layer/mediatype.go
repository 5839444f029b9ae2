package layer

import (
	"fmt"
	"strings"
)

// Layer media types, OCI and Docker, with the compression each declares.
// The nondistributable (OCI) and foreign (Docker) variants are deprecated
// but still found in Windows images; their blobs read the same way.
var layerMediaTypes = map[string]Compression{
	"application/vnd.oci.image.layer.v1.tar":                        Uncompressed,
	"application/vnd.oci.image.layer.v1.tar+gzip":                   Gzip,
	"application/vnd.oci.image.layer.v1.tar+zstd":                   Zstd,
	"application/vnd.oci.image.layer.nondistributable.v1.tar":       Uncompressed,
	"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip":  Gzip,
	"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd":  Zstd,
	"application/vnd.docker.image.rootfs.diff.tar":                  Uncompressed,
	"application/vnd.docker.image.rootfs.diff.tar.gzip":             Gzip,
	"application/vnd.docker.image.rootfs.diff.tar.zstd":             Zstd,
	"application/vnd.docker.image.rootfs.foreign.diff.tar":          Uncompressed,
	"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip":     Gzip,
	"application/vnd.docker.image.rootfs.foreign.diff.tar.zstd":     Zstd,
	"application/vnd.oci.image.layer.v1.tar+bzip2":                  Bzip2, // never standardised, but unambiguous
	"application/vnd.oci.image.layer.v1.tar+xz":                     Xz,    // idem
	"application/vnd.docker.image.rootfs.diff.tar.bzip2":            Bzip2, // idem
	"application/vnd.docker.image.rootfs.diff.tar.xz":               Xz,    // idem
	"application/vnd.oci.image.layer.nondistributable.v1.tar+bzip2": Bzip2, // idem
	"application/vnd.oci.image.layer.nondistributable.v1.tar+xz":    Xz,    // idem
}

// FromMediaType maps a layer media type to the compression it declares.
//
// ok is false, with no error, when the type says nothing about the layer:
// the empty string (docker save's manifest.json has no media types) and
// application/octet-stream. Callers then rely on [Detect].
//
// Any other type that is not a filesystem layer (a config, a manifest, an
// artifact, an encrypted layer) is an error wrapping [ErrMediaType].
// Matching ignores case and media type parameters ("; foo=bar").
func FromMediaType(mt string) (c Compression, ok bool, err error) {
	norm := mt
	if i := strings.IndexByte(norm, ';'); i >= 0 {
		norm = norm[:i]
	}
	norm = strings.ToLower(strings.TrimSpace(norm))
	if norm == "" || norm == "application/octet-stream" {
		return Uncompressed, false, nil
	}
	if c, found := layerMediaTypes[norm]; found {
		return c, true, nil
	}
	if strings.HasSuffix(norm, "+encrypted") {
		return Uncompressed, false, fmt.Errorf("%w: %q is an encrypted layer, which is not supported", ErrMediaType, mt)
	}
	return Uncompressed, false, fmt.Errorf("%w: %q", ErrMediaType, mt)
}
