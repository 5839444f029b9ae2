package image

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"

	"github.com/opencontainers/go-digest"
)

// Sentinels for the conditions callers branch on. The errors returned by this
// package wrap them; their own text carries the details.
var (
	// ErrNotFound: a file, blob, archive member, reference or platform the
	// image needs is not there.
	ErrNotFound = errors.New("image: not found")
	// ErrAmbiguous: the layout holds several images and the options do not
	// say which one.
	ErrAmbiguous = errors.New("image: ambiguous image reference")
	// ErrInvalid: the input is malformed (bad JSON, bad digest string,
	// member name escaping the archive, inconsistent sizes or counts).
	ErrInvalid = errors.New("image: invalid image")
	// ErrUnsupported: the input is well formed but of a kind this package
	// does not read (media type, layout version, compressed archive).
	ErrUnsupported = errors.New("image: unsupported image")
	// ErrDigest: a blob's content does not match its digest or size.
	ErrDigest = errors.New("image: digest mismatch")
)

// kindError is an internal error whose text is only its message and which
// unwraps to one of the sentinels, so that wrapped chains read
// "image: PATH: manifest X: blob Y: missing" rather than repeating the
// sentinels' own "image:" prefix.
type kindError struct {
	kind  error
	msg   string
	whole bool // msg already starts with "image: PATH"
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

func errorf(kind error, format string, args ...any) error {
	return &kindError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// DigestError reports a blob whose content does not match its descriptor.
// It is returned as is (not wrapped) by Open, LayerBlob and the reader of
// OpenLayer, and errors.Is(err, ErrDigest) holds for it.
type DigestError struct {
	Path     string        // the image, as given to Open
	Object   string        // what was read, e.g. "layer 2 (blobs/sha256/ab..)"
	Want     digest.Digest // expected digest, "" when only the size was checked
	Got      digest.Digest // digest of the bytes read, "" when not computed
	WantSize int64         // expected size in bytes
	GotSize  int64         // actual size in bytes
}

func (e *DigestError) Error() string {
	if e.WantSize != e.GotSize {
		return oneLine(fmt.Sprintf("image: %s: %s: size mismatch: %d bytes, want %d", e.Path, e.Object, e.GotSize, e.WantSize))
	}
	return oneLine(fmt.Sprintf("image: %s: %s: digest mismatch: got %s, want %s", e.Path, e.Object, e.Got, e.Want))
}

// Is reports whether target is ErrDigest.
func (e *DigestError) Is(target error) bool { return target == ErrDigest }

// lineError is how errors leave the package: the text of err, kept to one
// line whatever names from the input it quotes.
type lineError struct{ err error }

func (e *lineError) Error() string { return oneLine(e.err.Error()) }
func (e *lineError) Unwrap() error { return e.err }

// oneLine escapes control characters (a name in a hostile manifest may hold
// a newline) so that an error message stays one line.
func oneLine(s string) string {
	if !strings.ContainsFunc(s, unicode.IsControl) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if unicode.IsControl(r) {
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
