package tests

import (
	"archive/tar"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocirender/ocirender/internal/imagetest"
)

// tarShape checks what GNU tar forgives but DESIGN §6 promises about the
// tar output: the root directory comes first, every directory has its own
// entry before its children, a hard link comes after the name it links
// to, names are clean and unique, and no whiteout survives.
func tarShape(archive string) error {
	f, err := os.Open(archive)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	seen := map[string]byte{} // clean path -> type flag
	for i := 0; ; i++ {
		hdr, err := tr.Next()
		if err == io.EOF {
			if i == 0 {
				return fmt.Errorf("empty tar")
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("entry %d: %w", i, err)
		}
		name := strings.TrimSuffix(strings.TrimPrefix(hdr.Name, "./"), "/")
		if name == "" || name == "." {
			name = "."
		}
		switch {
		case hdr.Typeflag == tar.TypeXGlobalHeader:
			return fmt.Errorf("entry %d: PAX global header", i)
		case path.Clean(name) != name || strings.HasPrefix(name, "/") || name == ".." || strings.HasPrefix(name, "../"):
			return fmt.Errorf("entry %d: name %q is not clean", i, hdr.Name)
		case i == 0 && (name != "." || hdr.Typeflag != tar.TypeDir):
			return fmt.Errorf("entry 0 is %q (type %q), want the root directory", hdr.Name, hdr.Typeflag)
		case i > 0 && name == ".":
			return fmt.Errorf("entry %d: a second root entry", i)
		case strings.HasPrefix(path.Base(name), ".wh."):
			return fmt.Errorf("entry %d: whiteout %q in the output", i, hdr.Name)
		}
		if _, dup := seen[name]; dup {
			return fmt.Errorf("entry %d: %q appears twice", i, hdr.Name)
		}
		if name != "." {
			parent := path.Dir(name)
			if t, ok := seen[parent]; !ok || t != tar.TypeDir {
				return fmt.Errorf("entry %d: %q comes before an entry for its directory %q", i, hdr.Name, parent)
			}
		}
		if hdr.Typeflag == tar.TypeLink {
			target := strings.TrimPrefix(hdr.Linkname, "./")
			if t, ok := seen[target]; !ok || t == tar.TypeDir {
				return fmt.Errorf("entry %d: hard link %q to %q, which is not an earlier non-directory entry",
					i, hdr.Name, hdr.Linkname)
			}
		}
		seen[name] = hdr.Typeflag
	}
}

func TestTarShape(t *testing.T) {
	dir := func(name string) imagetest.Entry { return imagetest.Entry{Name: name, Type: tar.TypeDir} }
	file := func(name string) imagetest.Entry { return imagetest.Entry{Name: name, Body: "x"} }
	link := func(name, target string) imagetest.Entry {
		return imagetest.Entry{Name: name, Type: tar.TypeLink, Link: target}
	}
	for _, tc := range []struct {
		name    string
		entries []imagetest.Entry
		ok      bool
	}{
		{"good", []imagetest.Entry{dir("./"), dir("./a/"), file("./a/f"), link("./a/g", "./a/f")}, true},
		{"good without ./", []imagetest.Entry{dir("."), dir("a"), file("a/f"), link("a/g", "a/f")}, true},
		{"no root", []imagetest.Entry{dir("a/"), file("a/f")}, false},
		{"child first", []imagetest.Entry{dir("./"), file("a/f"), dir("a/")}, false},
		{"missing dir", []imagetest.Entry{dir("./"), file("a/f")}, false},
		{"link first", []imagetest.Entry{dir("./"), link("g", "f"), file("f")}, false},
		{"link to dir", []imagetest.Entry{dir("./"), dir("a"), link("g", "a")}, false},
		{"duplicate", []imagetest.Entry{dir("./"), file("f"), file("f")}, false},
		{"whiteout", []imagetest.Entry{dir("./"), file(".wh.f")}, false},
		{"unclean", []imagetest.Entry{dir("./"), dir("a"), file("a/../b")}, false},
		{"absolute", []imagetest.Entry{dir("./"), file("/b")}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "t.tar")
			if err := os.WriteFile(p, e2e.Layer(tc.entries...), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := tarShape(p); (err == nil) != tc.ok {
				t.Errorf("tarShape = %v, want ok %v", err, tc.ok)
			}
		})
	}
}
