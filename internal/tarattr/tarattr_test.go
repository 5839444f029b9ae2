package tarattr

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestXattrs(t *testing.T) {
	for _, tc := range []struct {
		records map[string]string
		want    []Xattr
		err     string
	}{
		{map[string]string{"SCHILY.xattr.user.a": "1", "mtime": "5"}, []Xattr{{"user.a", "1"}}, ""},
		{map[string]string{"SCHILY.xattr.user.empty": ""}, nil, ""},
		{map[string]string{"LIBARCHIVE.xattr.user.b%20c": "AAE="}, []Xattr{{"user.b c", "\x00\x01"}}, ""},
		{map[string]string{"LIBARCHIVE.xattr.user.raw": "AAE"}, []Xattr{{"user.raw", "\x00\x01"}}, ""},
		{map[string]string{"LIBARCHIVE.xattr.user.%zz": "AAE="}, nil, "bad xattr name"},
		{map[string]string{"LIBARCHIVE.xattr.user.x": "!!"}, nil, "bad xattr value"},
	} {
		got, err := Xattrs(tc.records)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%v: %v, want %q", tc.records, err, tc.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%v: %v, %v; want %v", tc.records, got, err, tc.want)
		}
	}
}

func TestUnixNano(t *testing.T) {
	if got := UnixNano(time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)); got <= 0 {
		t.Errorf("year 3000: %d, want saturated positive", got)
	}
	if got := UnixNano(time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC)); got >= 0 {
		t.Errorf("year 1000: %d, want saturated negative", got)
	}
	if got := UnixNano(time.Unix(5, 7)); got != 5e9+7 {
		t.Errorf("5.000000007 s: %d", got)
	}
}
