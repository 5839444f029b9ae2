package index

import (
	"errors"
	"io"
	"strings"
	"testing"
)

func TestContentFile(t *testing.T) {
	c := Content{strings.NewReader("0123456789"), nil}
	for _, tc := range []struct {
		name string
		in   Inode
		want string
		err  error
	}{
		{"a span of layer 0", Inode{Type: Reg, Layer: 0, Offset: 3, Size: 4}, "3456", nil},
		{"empty file of no layer", Inode{Type: Reg, Layer: NoLayer}, "", nil},
		{"layer without reader", Inode{Type: Reg, Layer: 1, Size: 1}, "", ErrNoContent},
		{"layer out of range", Inode{Type: Reg, Layer: 2, Size: 1}, "", ErrNoContent},
		{"negative layer", Inode{Type: Reg, Layer: -3, Size: 1}, "", ErrNoContent},
		{"locator past the stream", Inode{Type: Reg, Layer: 0, Offset: 8, Size: 4}, "89", io.ErrUnexpectedEOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := c.File(&tc.in)
			if err == nil {
				var b []byte
				b, err = io.ReadAll(r)
				if err == nil && int64(len(b)) < tc.in.Size {
					err = io.ErrUnexpectedEOF
				}
				if string(b) != tc.want {
					t.Errorf("File(%+v) read %q, want %q", tc.in, b, tc.want)
				}
			}
			if !errors.Is(err, tc.err) {
				t.Errorf("File(%+v) error = %v, want %v", tc.in, err, tc.err)
			}
		})
	}
}
