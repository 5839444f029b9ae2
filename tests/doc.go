// Package tests holds the end-to-end tests: they build the ocirender binary
// and judge what it writes with tools nobody here wrote.
//
//   - oracle_test.go exports every tag of a Debian image built by
//     mkimage.sh (debootstrap + umoci repack + hand-made layers) as a
//     directory, as a tar file and as a tar on stdout, and requires the
//     result to equal `umoci unpack` of the same tag, field by field
//     (verify.Compare). Tars are extracted by GNU tar and their shape is
//     checked (tarshape_test.go); the tar file and the tar on stdout must
//     be the same bytes.
//   - sample_test.go does the same with a small image built in code, in
//     a second, and checks --ref selection and layouts packed in a .tar.
//   - badinput_test.go feeds broken images and requires exit status 1,
//     one line on stderr naming the image and the problem, and nothing
//     left behind; bad command lines exit 2.
//
// The Debian image is built by mkimage.sh with the helpers under
// internal/: fixture (layer tars and OCI layouts in code), mkfixture (the
// hand-made layers and re-encoded copies) and treecmp (compare two trees
// by hand: go run ./tests/internal/treecmp WANT GOT).
//
// Running them (as root; umoci, debootstrap, GNU tar, setfattr, pigz and zstd
// installed; the first run of mkimage.sh takes a few minutes):
//
//	go test ./tests -v -timeout 60m
//	OCIRENDER_TEST_CACHE=/var/cache/ocirender-test   where the image is cached
//	OCIRENDER_TEST_TAGS=base,latest                  only these tags
//	go test ./tests -short                           skip the Debian image
//
// Tests skip, saying why, only when a tool or root is truly missing. If
// ./cmd/ocirender does not build, every test that needs it fails with the
// compiler's output.
package tests
