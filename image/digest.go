package image

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"strings"

	"github.com/opencontainers/go-digest"
)

// hexLen is the encoded length of each digest algorithm this package accepts.
var hexLen = map[string]int{
	"sha256": 64,
	"sha512": 128,
}

// parseDigest validates a digest string from untrusted input: a known
// algorithm and exactly the right number of lowercase hex digits. Only a
// digest that passed here may become part of a file name.
func parseDigest(s string) (digest.Digest, error) {
	alg, enc, ok := strings.Cut(s, ":")
	if !ok {
		return "", errorf(ErrInvalid, "bad digest %.80q: no algorithm", s)
	}
	n, known := hexLen[alg]
	if !known {
		return "", errorf(ErrUnsupported, "bad digest %.80q: algorithm %.20q not supported (sha256, sha512)", s, alg)
	}
	if len(enc) != n || !isLowerHex(enc) {
		return "", errorf(ErrInvalid, "bad digest %.80q: want %d lowercase hex digits", s, n)
	}
	return digest.Digest(s), nil
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// blobName is the member name of a validated digest in an OCI layout.
func blobName(d digest.Digest) string {
	return "blobs/" + d.Algorithm().String() + "/" + d.Encoded()
}

// digestOfBlobName returns the digest a member name such as
// "blobs/sha256/<hex>" stands for, or false if the name is not of that shape.
func digestOfBlobName(name string) (digest.Digest, bool) {
	rest, ok := strings.CutPrefix(name, "blobs/")
	if !ok {
		return "", false
	}
	alg, enc, ok := strings.Cut(rest, "/")
	if !ok {
		return "", false
	}
	d, err := parseDigest(alg + ":" + enc)
	return d, err == nil
}

// newHash returns a hash for a validated digest's algorithm.
func newHash(d digest.Digest) hash.Hash {
	switch d.Algorithm() {
	case "sha512":
		return sha512.New()
	default:
		return sha256.New()
	}
}

// digestOf computes the digest of data with the algorithm of like.
func digestOf(like digest.Digest, data []byte) digest.Digest {
	h := newHash(like)
	h.Write(data)
	return digest.Digest(like.Algorithm().String() + ":" + hex.EncodeToString(h.Sum(nil)))
}

// sha256Of returns "sha256:<hex>" of data.
func sha256Of(data []byte) digest.Digest {
	sum := sha256.Sum256(data)
	return digest.Digest("sha256:" + hex.EncodeToString(sum[:]))
}

// verifyReader passes a blob through, hashing it, and turns the end of the
// stream into a *DigestError when the size or digest is wrong. It never
// reports io.EOF for a blob that did not verify.
type verifyReader struct {
	r    io.Reader
	h    hash.Hash // nil when the digest is unknown: only the size is checked
	want digest.Digest
	size int64
	n    int64
	err  error // sticky: the final result once the stream ended or failed
	path string
	what string
}

func newVerifyReader(r io.Reader, want digest.Digest, size int64, path, what string) *verifyReader {
	v := &verifyReader{r: r, want: want, size: size, path: path, what: what}
	if want != "" {
		v.h = newHash(want)
	}
	return v
}

func (v *verifyReader) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.r.Read(p)
	v.n += int64(n)
	if v.h != nil {
		v.h.Write(p[:n])
	}
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		// ErrUnexpectedEOF: the file shrank under us; report it as the
		// size mismatch it is.
		err = v.finish()
	}
	if err != nil {
		v.err = err
	}
	return n, err
}

func (v *verifyReader) finish() error {
	if v.n != v.size {
		return &DigestError{Path: v.path, Object: v.what, Want: v.want, WantSize: v.size, GotSize: v.n}
	}
	if v.h == nil {
		return io.EOF
	}
	got := digest.Digest(v.want.Algorithm().String() + ":" + hex.EncodeToString(v.h.Sum(nil)))
	if got != v.want {
		return &DigestError{Path: v.path, Object: v.what, Want: v.want, Got: got, WantSize: v.size, GotSize: v.n}
	}
	return io.EOF
}

func (v *verifyReader) Close() error {
	if v.err == nil {
		v.err = &lineError{fmt.Errorf("image: %s: %s: %w", v.path, v.what, os.ErrClosed)}
	}
	return nil
}
