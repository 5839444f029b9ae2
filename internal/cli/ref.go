package cli

import (
	"errors"
	"io/fs"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// PullTarget tells a registry reference from a local image path: "docker://REF" is always a
// reference; anything else is one only when it does not start with / or . nor end in .tar,
// no file or directory of that name exists, and it parses as a reference. explicit reports the
// docker:// form.
func PullTarget(arg string) (ref string, explicit, ok bool) {
	if r, found := strings.CutPrefix(arg, "docker://"); found {
		return r, true, true
	}
	if strings.HasPrefix(arg, "/") || strings.HasPrefix(arg, ".") || strings.HasSuffix(arg, ".tar") {
		return "", false, false // spelled as a path (a missing debian.tar is not docker.io/library/debian.tar)
	}
	if _, err := os.Lstat(arg); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return "", false, false
	}
	if _, err := name.ParseReference(arg); err != nil {
		return "", false, false
	}
	return arg, false, true
}
