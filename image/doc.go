// Package image opens container images as they sit on disk and hands out
// their layer blobs, verified.
//
// It owns the storage formats and the choice of one image inside them:
//
//   - OCI image layouts (an oci-layout file, index.json and blobs/<alg>/<hex>),
//   - `docker save` output (manifest.json with legacy <id>/layer.tar layers, or
//     the blobs/sha256 layout that docker 25 and later write next to an OCI
//     index.json),
//   - either of those as a directory or as a .tar archive. Archives are read
//     in place: their tar headers are parsed once to map member names to
//     spans of the archive file, and a blob is then such a span. Nothing is
//     unpacked.
//
// Names inside a layout are untrusted. In a directory, files are opened
// through an os.Root, so no name or symlink reaches outside it, and only
// regular files are opened. In an archive, member names are cleaned like
// paths and one that escapes the root ("../x") makes the archive invalid;
// when a name occurs twice the last member wins, as with tar -x; symbolic
// and hard links between members are followed (docker save links layers
// shared by several images); sparse members are refused. Compressed
// archives (docker save | gzip) are refused with a hint to decompress them.
//
// Inside a layout it resolves index.json through nested image indexes
// (bounded depth) to one manifest, picking by reference (Options.Ref: the
// org.opencontainers.image.ref.name annotation, a containerd image name or a
// docker RepoTag) and by platform (Options.Platform, default: the host).
// Every digest read from the input is validated before it becomes a file
// name; every JSON document is read under a size cap and checked against its
// descriptor's digest and size; layer blobs are checked for size when handed
// out and for digest when streamed through OpenLayer.
//
// It deliberately knows nothing about what is inside a layer: media types
// are passed through as declared, and decompression, tar entries, whiteouts
// and merging belong to the layer and overlay packages.
//
// Errors name the image path and the object concerned, on one line, and wrap
// one of the sentinels ErrNotFound, ErrAmbiguous, ErrInvalid, ErrUnsupported
// or ErrDigest so callers can branch with errors.Is. Digest and size
// mismatches of blobs are *DigestError values.
package image
