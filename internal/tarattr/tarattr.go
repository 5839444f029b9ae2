// Package tarattr reads what a tar header carries beyond archive/tar's fields, the same way
// for the layer scan (overlay) and for checking an exported tar (verify): extended attributes
// from PAX records, and modification times as saturated nanoseconds.
package tarattr

import (
	"encoding/base64"
	"fmt"
	"math"
	"net/url"
	"strings"
	"time"
)

// Xattr is one extended attribute, its value byte-exact.
type Xattr struct{ Name, Value string }

// Xattrs returns the extended attributes of PAX records, in no particular order:
// SCHILY.xattr.NAME=VALUE (GNU tar, Go) and LIBARCHIVE.xattr.URL-ESCAPED-NAME=BASE64
// (libarchive). A record with an empty value sets nothing: POSIX pax says an empty value
// deletes the keyword, and umoci and GNU tar read it so.
func Xattrs(records map[string]string) ([]Xattr, error) {
	var out []Xattr
	for k, v := range records {
		if v == "" {
			continue
		}
		switch {
		case strings.HasPrefix(k, "SCHILY.xattr."):
			out = append(out, Xattr{k[len("SCHILY.xattr."):], v})
		case strings.HasPrefix(k, "LIBARCHIVE.xattr."):
			name, err := url.QueryUnescape(k[len("LIBARCHIVE.xattr."):])
			if err != nil {
				return nil, fmt.Errorf("bad xattr name %q: %v", k, err)
			}
			val, err := base64.StdEncoding.DecodeString(v)
			if err != nil {
				if val, err = base64.RawStdEncoding.DecodeString(v); err != nil {
					return nil, fmt.Errorf("bad xattr value for %q: %v", name, err)
				}
			}
			out = append(out, Xattr{name, string(val)})
		}
	}
	return out, nil
}

// UnixNano converts t to nanoseconds since the epoch, saturating outside the int64 range
// (years 1678..2262).
func UnixNano(t time.Time) int64 {
	const maxSec int64 = math.MaxInt64/1_000_000_000 - 1
	s := t.Unix()
	switch {
	case s > maxSec:
		return maxSec * 1e9
	case s < -maxSec:
		return -maxSec * 1e9
	}
	return t.UnixNano()
}
