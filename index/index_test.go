package index_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/ocirender/ocirender/index"
)

// build makes an index from "path type [target]" lines, parents first.
func build(t *testing.T, lines ...string) *index.Index {
	t.Helper()
	b := index.NewBuilder(len(lines))
	ids := map[string]index.ID{}
	ids[""] = b.AddEntry(index.NoParent, "", b.AddInode(index.Inode{Type: index.Dir, Mode: 0o755}))
	for _, l := range lines {
		f := strings.Fields(l)
		p := f[0]
		parent, name := "", p
		if i := strings.LastIndexByte(p, '/'); i >= 0 {
			parent, name = p[:i], p[i+1:]
		}
		in := index.Inode{Mode: 0o644, Layer: 0}
		switch f[1] {
		case "dir":
			in.Type = index.Dir
		case "file":
			in.Type, in.Size = index.Reg, int64(len(p))
		case "link":
			in.Type, in.Link = index.Symlink, f[2]
		}
		ids[p] = b.AddEntry(ids[parent], name, b.AddInode(in))
	}
	ix, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return ix
}

func TestResolve(t *testing.T) {
	ix := build(t, "usr dir", "usr/lib dir", "usr/lib/x file", "lib link usr/lib", "abs link /usr/lib",
		"up link ../../../usr", "loop1 link loop2", "loop2 link loop1", "f file", "dangling link nowhere",
		"usr/lib/self link .", "chain link lib")
	for _, tc := range []struct {
		path   string
		follow bool
		want   string
		err    error
	}{
		{"/usr/lib/x", true, "usr/lib/x", nil},
		{"lib/x", true, "usr/lib/x", nil},
		{"/abs/x", true, "usr/lib/x", nil},
		{"up/lib/x", true, "usr/lib/x", nil},
		{"chain/x", true, "usr/lib/x", nil},
		{"usr/lib/self/self/x", true, "usr/lib/x", nil},
		{"lib", false, "lib", nil},
		{"lib", true, "usr/lib", nil},
		{"lib/", false, "usr/lib", nil},
		{"/../../usr", true, "usr", nil},
		{".", true, "", nil},
		{"loop1/x", true, "", index.ErrLoop},
		{"loop1", true, "", index.ErrLoop},
		{"loop1", false, "loop1", nil},
		{"f/x", true, "", index.ErrNotDir},
		{"dangling/x", true, "", index.ErrNotExist},
		{"nothere", true, "", index.ErrNotExist},
	} {
		id, err := ix.Resolve(tc.path, tc.follow)
		if tc.err != nil {
			if !errors.Is(err, tc.err) {
				t.Errorf("Resolve(%q, %v) = %v, want %v", tc.path, tc.follow, err, tc.err)
			}
			continue
		}
		if err != nil || ix.Path(id) != tc.want {
			t.Errorf("Resolve(%q, %v) = %q, %v; want %q", tc.path, tc.follow, ix.Path(id), err, tc.want)
		}
	}
}

func TestWalkOrderAndLookup(t *testing.T) {
	// Added out of order: Finish sorts every directory's children bytewise.
	ix := build(t, "b dir", "a file", "b/z file", "b/\xff file", "b/A file", "c link b")
	var got []string
	ix.Walk(index.Root, func(id index.ID, p string) error {
		got = append(got, p)
		if lid, err := ix.Lookup(p); err != nil || lid != id {
			t.Errorf("Lookup(%q) = %d, %v; want %d", p, lid, err, id)
		}
		if p == "b" {
			return nil
		}
		return nil
	})
	want := []string{"", "a", "b", "b/A", "b/z", "b/\xff", "c"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("Walk = %q, want %q", got, want)
	}
	if _, err := ix.Lookup("c/z"); !errors.Is(err, index.ErrNotDir) {
		t.Errorf("Lookup(c/z) = %v, want ErrNotDir (Lookup follows no symlink)", err)
	}
	var skipped []string
	ix.Walk(index.Root, func(id index.ID, p string) error {
		skipped = append(skipped, p)
		if p == "b" {
			return index.SkipDir
		}
		return nil
	})
	if strings.Join(skipped, ",") != ",a,b,c" {
		t.Errorf("Walk with SkipDir at b = %q", skipped)
	}
}

func TestBuilderErrors(t *testing.T) {
	b := index.NewBuilder(0)
	f := b.AddInode(index.Inode{Type: index.Reg})
	b.AddEntry(index.NoParent, "", f)
	if _, err := b.Finish(); err == nil {
		t.Error("Finish with a file root succeeded")
	}
	b = index.NewBuilder(0)
	d := b.AddInode(index.Inode{Type: index.Dir})
	r := b.AddEntry(index.NoParent, "", d)
	b.AddEntry(r, "x", b.AddInode(index.Inode{Type: index.Reg}))
	b.AddEntry(r, "x", b.AddInode(index.Inode{Type: index.Reg}))
	if _, err := b.Finish(); err == nil || !strings.Contains(err.Error(), "duplicate") {
		t.Errorf("Finish with a duplicate name = %v, want a duplicate error", err)
	}
	b = index.NewBuilder(0)
	b.AddEntry(index.NoParent, "", 7)
	if _, err := b.Finish(); err == nil {
		t.Error("Finish with an unknown inode succeeded")
	}
}

func TestXattrsInternedAndSorted(t *testing.T) {
	b := index.NewBuilder(0)
	r := b.AddEntry(index.NoParent, "", b.AddInode(index.Inode{Type: index.Dir}))
	xs := []index.Xattr{{Name: "user.b", Value: "2"}, {Name: "user.a", Value: "\x00"}}
	b.AddEntry(r, "x", b.AddInode(index.Inode{Type: index.Reg, Xattrs: xs}))
	b.AddEntry(r, "y", b.AddInode(index.Inode{Type: index.Reg, Xattrs: []index.Xattr{xs[1], xs[0]}}))
	b.AddEntry(r, "z", b.AddInode(index.Inode{Type: index.Reg, Size: 5}))
	ix, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	x, y := ix.Entry(1).Xattrs, ix.Entry(2).Xattrs
	if len(x) != 2 || x[0].Name != "user.a" || x[0].Value != "\x00" || &x[0] != &y[0] {
		t.Errorf("xattrs of x = %q, y = %q; want one shared set sorted by name", x, y)
	}
	if !ix.HasXattrs() || ix.Entry(3).Xattrs != nil {
		t.Error("HasXattrs or a file without xattrs is wrong")
	}
	if ix.ContentSize() != 5 {
		t.Errorf("ContentSize = %d, want 5", ix.ContentSize())
	}
}
