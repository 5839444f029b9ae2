package overlay_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ocirender/ocirender/index"
	"github.com/ocirender/ocirender/internal/imagetest"
	"github.com/ocirender/ocirender/overlay"
)

type F = imagetest.Entry

var (
	reg      = imagetest.Reg
	dir      = imagetest.Dir
	sym      = imagetest.Sym
	hard     = imagetest.Hard
	whiteout = imagetest.Whiteout
	opaque   = imagetest.Opaque
)

func mode(m int64) func(*F)       { return func(f *F) { f.Mode = m } }
func owner(u, g int) func(*F)     { return func(f *F) { f.UID, f.GID = u, g } }
func typ(t byte) func(*F)         { return func(f *F) { f.Type = t } }
func dev(maj, min int64) func(*F) { return func(f *F) { f.Devmajor, f.Devminor = maj, min } }

// merge applies layers (each a list of entries) and returns the index and the raw layers.
func merge(t testing.TB, layers ...[]F) (*index.Index, [][]byte, error) {
	t.Helper()
	return imagetest.Merge(layers...)
}

// render lists the tree one line per entry: path, type, mode, owner, then what the type
// carries (content, link target, device numbers), xattrs and the hard-link group.
func render(ix *index.Index, raw [][]byte) string {
	var lines []string
	groups := map[index.InodeID]string{}
	ix.Walk(index.Root, func(id index.ID, p string) error {
		if p == "" {
			p = "."
		}
		e := ix.Entry(id)
		s := fmt.Sprintf("%s %s %04o %d:%d", p, e.Type, e.Mode, e.UID, e.GID)
		switch e.Type {
		case index.Reg:
			s += fmt.Sprintf(" %q", raw[e.Layer][e.Offset:e.Offset+e.Size])
		case index.Symlink:
			s += " -> " + e.Link
		case index.Char, index.Block:
			s += fmt.Sprintf(" %d,%d", e.Devmajor, e.Devminor)
		}
		for _, x := range e.Xattrs {
			s += fmt.Sprintf(" %s=%q", x.Name, x.Value)
		}
		if e.Type != index.Dir && e.Nlink > 1 {
			if first, ok := groups[e.Ino]; ok {
				s += " =" + first
			} else {
				groups[e.Ino] = p
			}
		}
		lines = append(lines, s)
		return nil
	})
	return strings.Join(lines, "\n")
}

const root = ". dir 0755 0:0\n"

var ruleTests = []struct {
	name   string
	layers [][]F
	want   string // rendered tree, or the error text expected
	err    error  // when set, the merge must fail with it
}{
	// Rule 1: names.
	{name: "clean dot-slash and leading slash and double slash",
		layers: [][]F{{reg("./a", "1"), reg("/b", "2"), reg("c//d", "3")}},
		want:   root + "a file 0644 0:0 \"1\"\nb file 0644 0:0 \"2\"\nc dir 0755 0:0\nc/d file 0644 0:0 \"3\""},
	{name: "dotdot escape", layers: [][]F{{reg("../x", "")}}, err: overlay.ErrEscape},
	{name: "dotdot escape hidden by cleaning", layers: [][]F{{reg("a/../../x", "")}}, err: overlay.ErrEscape},
	{name: "dotdot inside stays", layers: [][]F{{reg("a/../x", "1")}}, want: root + "x file 0644 0:0 \"1\""},
	{name: "root entry sets root metadata",
		layers: [][]F{{dir("./").With(mode(0o700)).With(owner(5, 6)), reg("a", "")}},
		want:   ". dir 0700 5:6\na file 0644 0:0 \"\""},
	{name: "root entry not a dir", layers: [][]F{{reg(".", "")}}, err: overlay.ErrRootNotDir},
	{name: "component too long", layers: [][]F{{reg(strings.Repeat("n", 256), "")}}, err: overlay.ErrNameTooLong},
	{name: "255 byte name", layers: [][]F{{reg(strings.Repeat("n", 255), "")}},
		want: root + strings.Repeat("n", 255) + " file 0644 0:0 \"\""},

	// Rule 2: parents.
	{name: "implicit parents", layers: [][]F{{reg("a/b/c", "x")}},
		want: root + "a dir 0755 0:0\na/b dir 0755 0:0\na/b/c file 0644 0:0 \"x\""},
	{name: "relative symlinked parent across layers",
		layers: [][]F{{dir("usr"), dir("usr/lib"), sym("lib", "usr/lib")}, {reg("lib/x", "1")}},
		want:   root + "lib symlink 0644 0:0 -> usr/lib\nusr dir 0755 0:0\nusr/lib dir 0755 0:0\nusr/lib/x file 0644 0:0 \"1\""},
	{name: "absolute symlinked parent is relative to the image root",
		layers: [][]F{{dir("usr"), dir("usr/lib"), sym("a/lib", "/usr/lib")}, {reg("a/lib/x", "1")}},
		want:   root + "a dir 0755 0:0\na/lib symlink 0644 0:0 -> /usr/lib\nusr dir 0755 0:0\nusr/lib dir 0755 0:0\nusr/lib/x file 0644 0:0 \"1\""},
	{name: "dotdot in symlink target stops at root",
		layers: [][]F{{dir("etc"), sym("up", "../../../etc")}, {reg("up/x", "1")}},
		want:   root + "etc dir 0755 0:0\netc/x file 0644 0:0 \"1\"\nup symlink 0644 0:0 -> ../../../etc"},
	{name: "chained symlinks", layers: [][]F{{dir("d"), sym("s1", "s2"), sym("s2", "d")}, {reg("s1/f", "1")}},
		want: root + "d dir 0755 0:0\nd/f file 0644 0:0 \"1\"\ns1 symlink 0644 0:0 -> s2\ns2 symlink 0644 0:0 -> d"},
	{name: "dangling symlinked parent creates the target",
		layers: [][]F{{sym("lib", "usr/lib")}, {reg("lib/x", "1")}},
		want:   root + "lib symlink 0644 0:0 -> usr/lib\nusr dir 0755 0:0\nusr/lib dir 0755 0:0\nusr/lib/x file 0644 0:0 \"1\""},
	{name: "looping symlink parent", layers: [][]F{{sym("a", "b"), sym("b", "a")}, {reg("a/x", "")}}, err: overlay.ErrLoop},
	{name: "self loop", layers: [][]F{{sym("a", "a"), reg("a/x", "")}}, err: overlay.ErrLoop},
	{name: "parent is a file", layers: [][]F{{reg("a", "")}, {reg("a/b", "")}}, err: overlay.ErrNotDir},
	{name: "final symlink is not followed",
		layers: [][]F{{dir("d"), sym("s", "d")}, {reg("s", "now a file")}},
		want:   root + "d dir 0755 0:0\ns file 0644 0:0 \"now a file\""},

	// Rule 3: whiteouts.
	{name: "whiteout removes lower file",
		layers: [][]F{{reg("a", "1"), reg("b", "2")}, {whiteout("a")}},
		want:   root + "b file 0644 0:0 \"2\""},
	{name: "whiteout removes lower subtree",
		layers: [][]F{{dir("d"), reg("d/x", "1"), dir("d/e"), reg("d/e/y", "2"), reg("k", "")}, {whiteout("d")}},
		want:   root + "k file 0644 0:0 \"\""},
	{name: "whiteout after same-layer entry keeps it",
		layers: [][]F{{reg("a", "old")}, {reg("a", "new"), whiteout("a")}},
		want:   root + "a file 0644 0:0 \"new\""},
	{name: "whiteout before same-layer entry keeps it",
		layers: [][]F{{reg("a", "old")}, {whiteout("a"), reg("a", "new")}},
		want:   root + "a file 0644 0:0 \"new\""},
	{name: "whiteout and same-layer dir drops lower children",
		layers: [][]F{{dir("d"), reg("d/old", "1")}, {dir("d").With(mode(0o700)), reg("d/new", "2"), whiteout("d")}},
		want:   root + "d dir 0700 0:0\nd/new file 0644 0:0 \"2\""},
	{name: "whiteout of a lower dir keeps same-layer children written before it",
		layers: [][]F{{dir("d").With(mode(0o700)).With(owner(1, 1)), reg("d/x", "1")}, {reg("d/y", "2"), whiteout("d")}},
		want:   root + "d dir 0755 0:0\nd/y file 0644 0:0 \"2\""},
	{name: "whiteout of a lower dir keeps a same-layer dir entry and its children",
		layers: [][]F{{dir("d"), dir("d/e"), reg("d/e/x", "1")}, {dir("d/e").With(mode(0o711)), reg("d/e/y", "2"), whiteout("d")}},
		want:   root + "d dir 0755 0:0\nd/e dir 0711 0:0\nd/e/y file 0644 0:0 \"2\""},
	{name: "whiteout under a dir the same layer replaced by a file is a no-op",
		layers: [][]F{{dir("d"), reg("d/x", "1")}, {reg("d", "f"), whiteout("d/x")}},
		want:   root + "d file 0644 0:0 \"f\""},
	{name: "empty xattr record sets nothing",
		layers: [][]F{{reg("a", "").With(func(f *F) { f.PAX = map[string]string{"SCHILY.xattr.user.empty": "", "SCHILY.xattr.user.x": "1"} })}},
		want:   root + "a file 0644 0:0 \"\" user.x=\"1\""},
	{name: "whiteout of missing is a no-op", layers: [][]F{{reg("a", "1")}, {whiteout("nothere"), whiteout("no/such/dir")}},
		want: root + "a file 0644 0:0 \"1\""},
	{name: "three layers: delete then recreate",
		layers: [][]F{{reg("a", "1")}, {whiteout("a")}, {reg("a", "3")}},
		want:   root + "a file 0644 0:0 \"3\""},
	{name: "three layers: whiteout hides only lower, recreated name survives later whiteout of sibling",
		layers: [][]F{{dir("d"), reg("d/a", "1"), reg("d/b", "1")}, {whiteout("d/a"), reg("d/c", "2")}, {whiteout("d/b")}},
		want:   root + "d dir 0755 0:0\nd/c file 0644 0:0 \"2\""},
	{name: "whiteout through a symlinked parent",
		layers: [][]F{{dir("usr/lib"), reg("usr/lib/x", "1"), sym("lib", "usr/lib")}, {whiteout("lib/x")}},
		want:   root + "lib symlink 0644 0:0 -> usr/lib\nusr dir 0755 0:0\nusr/lib dir 0755 0:0"},
	{name: "whiteout of a symlink removes the link not its target",
		layers: [][]F{{dir("t"), reg("t/x", "1"), sym("s", "t")}, {whiteout("s")}},
		want:   root + "t dir 0755 0:0\nt/x file 0644 0:0 \"1\""},
	// Limits apply to the name a whiteout means, not to its own: ".wh." + 255 bytes is a
	// 259-byte header name that buildah, podman, docker and umoci all write.
	{name: "whiteout of a 255-byte name",
		layers: [][]F{{reg(name255, "1"), reg("k", "")}, {whiteout(name255)}},
		want:   root + "k file 0644 0:0 \"\""},
	{name: "whiteout of a 255-byte UTF-8 name",
		layers: [][]F{{dir("d"), reg("d/"+utf8Name255, "1"), reg("d/k", "")}, {whiteout("d/" + utf8Name255)}},
		want:   root + "d dir 0755 0:0\nd/k file 0644 0:0 \"\""},
	{name: "whiteout of a 255-byte directory removes its subtree",
		layers: [][]F{{dir(name255), reg(name255+"/x", "1"), reg("k", "")}, {whiteout(name255)}},
		want:   root + "k file 0644 0:0 \"\""},
	{name: "opaque marker in a 255-byte directory",
		layers: [][]F{{dir(utf8Name255), reg(utf8Name255+"/old", "1")}, {opaque(utf8Name255), reg(utf8Name255+"/new", "2")}},
		want:   root + utf8Name255 + " dir 0755 0:0\n" + utf8Name255 + "/new file 0644 0:0 \"2\""},
	{name: "whiteout of a 256-byte name", layers: [][]F{{reg("k", "")}, {whiteout(strings.Repeat("W", 256))}},
		err: overlay.ErrNameTooLong},
	{name: "whiteout of a 256-byte UTF-8 name", layers: [][]F{{reg("k", "")}, {whiteout(strings.Repeat("é", 128))}},
		err: overlay.ErrNameTooLong},
	{name: "whiteout of a 4096-byte path",
		layers: [][]F{{reg(longPath(4096), "1"), reg("k", "")}, {whiteout(longPath(4096))}},
		want:   root + implicitDirs(longPath(4096)) + "k file 0644 0:0 \"\""},
	{name: "whiteout of a 4097-byte path", layers: [][]F{{reg("k", "")}, {whiteout(longPath(4097))}},
		err: overlay.ErrNameTooLong},
	{name: "opaque marker in a directory whose child path is 4096 bytes",
		layers: [][]F{{reg(longPath(4090)+"/abcde", "1")}, {opaque(longPath(4090)), reg(longPath(4090)+"/new", "2")}},
		want:   root + implicitDirs(longPath(4090)+"/new") + longPath(4090) + "/new file 0644 0:0 \"2\""},
	{name: "a 4097-byte path", layers: [][]F{{reg(longPath(4097), "")}}, err: overlay.ErrNameTooLong},
	{name: "a hard link to a 256-byte name", layers: [][]F{{reg("a", ""), hard("b", strings.Repeat("n", 256))}},
		err: overlay.ErrNameTooLong},
	{name: "bare .wh. is an error", layers: [][]F{{reg(".wh.", "")}}, err: overlay.ErrBadWhiteout},
	{name: "whiteout used as a directory", layers: [][]F{{reg(".wh.a/b", "")}}, err: overlay.ErrBadWhiteout},
	{name: "whiteout files never appear", layers: [][]F{{whiteout("a"), whiteout("d/b")}},
		want: strings.TrimSuffix(root, "\n")},
	{name: "aufs metadata never appears",
		layers: [][]F{{reg(".wh..wh.aufs", ""), dir(".wh..wh.orph"), reg(".wh..wh.orph/x", ""), dir(".wh..wh.plnk"), reg(".wh..wh.plnk/1.2", "z"), reg("a", "1")}},
		want:   root + "a file 0644 0:0 \"1\""},

	// Rule 3: opaque directories.
	{name: "opaque hides lower children keeps dir metadata",
		layers: [][]F{{dir("d").With(mode(0o700)), reg("d/a", "1"), dir("d/s"), reg("d/s/b", "1")}, {opaque("d"), reg("d/c", "2")}},
		want:   root + "d dir 0700 0:0\nd/c file 0644 0:0 \"2\""},
	{name: "opaque with own dir entry takes its metadata",
		layers: [][]F{{dir("d").With(mode(0o700)), reg("d/a", "1")}, {dir("d").With(mode(0o750)), reg("d/c", "2"), opaque("d")}},
		want:   root + "d dir 0750 0:0\nd/c file 0644 0:0 \"2\""},
	{name: "opaque after same-layer children keeps them",
		layers: [][]F{{dir("d"), reg("d/a", "1")}, {reg("d/b", "2"), opaque("d")}},
		want:   root + "d dir 0755 0:0\nd/b file 0644 0:0 \"2\""},
	{name: "opaque of missing dir is a no-op",
		layers: [][]F{{reg("a", "")}, {opaque("d")}},
		want:   root + "a file 0644 0:0 \"\""},
	{name: "opaque then later layer adds back",
		layers: [][]F{{dir("d"), reg("d/a", "1")}, {opaque("d")}, {reg("d/a", "3")}},
		want:   root + "d dir 0755 0:0\nd/a file 0644 0:0 \"3\""},

	// Rule 4: replacement and duplicates.
	{name: "dir replaced by file",
		layers: [][]F{{dir("d"), reg("d/a", "1")}, {reg("d", "f")}},
		want:   root + "d file 0644 0:0 \"f\""},
	{name: "file replaced by dir",
		layers: [][]F{{reg("d", "f")}, {dir("d"), reg("d/a", "1")}},
		want:   root + "d dir 0755 0:0\nd/a file 0644 0:0 \"1\""},
	{name: "dir replaced by symlink",
		layers: [][]F{{dir("d"), reg("d/a", "1"), dir("t")}, {sym("d", "t")}},
		want:   root + "d symlink 0644 0:0 -> t\nt dir 0755 0:0"},
	{name: "symlink replaced by dir",
		layers: [][]F{{dir("t"), reg("t/a", "1"), sym("d", "t")}, {dir("d")}},
		want:   root + "d dir 0755 0:0\nt dir 0755 0:0\nt/a file 0644 0:0 \"1\""},
	{name: "file replaced by symlink and by fifo",
		layers: [][]F{{reg("a", "1"), reg("b", "2")}, {sym("a", "b"), reg("b", "").With(typ(tar.TypeFifo))}},
		want:   root + "a symlink 0644 0:0 -> b\nb fifo 0644 0:0"},
	{name: "dir over dir keeps children takes metadata",
		layers: [][]F{{dir("d").With(mode(0o700)), reg("d/a", "1")}, {dir("d").With(mode(0o711)).With(owner(3, 4))}},
		want:   root + "d dir 0711 3:4\nd/a file 0644 0:0 \"1\""},
	{name: "duplicates in one layer: last wins",
		layers: [][]F{{reg("a", "1"), reg("a", "2"), sym("b", "x"), reg("b", "3")}},
		want:   root + "a file 0644 0:0 \"2\"\nb file 0644 0:0 \"3\""},

	// Rule 5: hard links.
	{name: "hard link in one layer",
		layers: [][]F{{reg("a", "1"), hard("b", "a")}},
		want:   root + "a file 0644 0:0 \"1\"\nb file 0644 0:0 \"1\" =a"},
	{name: "hard link to a lower layer file",
		layers: [][]F{{reg("a", "1")}, {hard("b", "a")}},
		want:   root + "a file 0644 0:0 \"1\"\nb file 0644 0:0 \"1\" =a"},
	{name: "replacing the target keeps the link's inode",
		layers: [][]F{{reg("a", "old"), hard("b", "a"), hard("c", "a")}, {reg("a", "new")}},
		want:   root + "a file 0644 0:0 \"new\"\nb file 0644 0:0 \"old\"\nc file 0644 0:0 \"old\" =b"},
	{name: "whiting out the target keeps the link",
		layers: [][]F{{reg("a", "1"), hard("b", "a")}, {whiteout("a")}},
		want:   root + "b file 0644 0:0 \"1\""},
	{name: "link binds at application time",
		layers: [][]F{{reg("a", "1"), hard("b", "a"), reg("a", "2")}},
		want:   root + "a file 0644 0:0 \"2\"\nb file 0644 0:0 \"1\""},
	{name: "link to missing target", layers: [][]F{{hard("b", "nothere")}}, err: overlay.ErrLinkTarget},
	{name: "link to directory", layers: [][]F{{dir("d"), hard("b", "d")}}, err: overlay.ErrLinkTarget},
	{name: "link escaping root", layers: [][]F{{reg("a", ""), hard("b", "../a")}}, err: overlay.ErrEscape},
	{name: "link to symlink is that symlink",
		layers: [][]F{{sym("s", "nowhere"), hard("h", "s")}},
		want:   root + "h symlink 0644 0:0 -> nowhere\ns symlink 0644 0:0 -> nowhere =h"},
	{name: "link target through symlinked parent",
		layers: [][]F{{dir("usr/lib"), reg("usr/lib/a", "1"), sym("lib", "usr/lib")}, {hard("b", "lib/a")}},
		want:   root + "b file 0644 0:0 \"1\"\nlib symlink 0644 0:0 -> usr/lib\nusr dir 0755 0:0\nusr/lib dir 0755 0:0\nusr/lib/a file 0644 0:0 \"1\" =b"},
	{name: "link before a same-layer whiteout of its target keeps the content",
		layers: [][]F{{reg("a", "1")}, {hard("b", "a"), whiteout("a")}},
		want:   root + "b file 0644 0:0 \"1\""},
	{name: "link after a same-layer whiteout of its target fails",
		layers: [][]F{{reg("a", "1")}, {whiteout("a"), hard("b", "a")}}, err: overlay.ErrLinkTarget},
	{name: "link replaces a directory",
		layers: [][]F{{reg("a", "1"), dir("d"), reg("d/x", "")}, {hard("d", "a")}},
		want:   root + "a file 0644 0:0 \"1\"\nd file 0644 0:0 \"1\" =a"},
	{name: "link to a device and a fifo",
		layers: [][]F{{reg("c", "").With(typ(tar.TypeChar)).With(dev(1, 3)), hard("c2", "c")}},
		want:   root + "c char 0644 0:0 1,3\nc2 char 0644 0:0 1,3 =c"},

	// Rule 6: headers.
	{name: "PAX long name and link name",
		layers: [][]F{{reg(strings.Repeat("d/", 60)+"f", "1"), sym("s", strings.Repeat("x/", 100)+"t")}},
		want:   root + longDirs(60) + strings.Repeat("d/", 60) + "f file 0644 0:0 \"1\"\ns symlink 0644 0:0 -> " + strings.Repeat("x/", 100) + "t"},
	{name: "GNU long name and link name",
		layers: [][]F{{reg(strings.Repeat("d/", 60)+"f", "1").With(func(f *F) { f.Format = tar.FormatGNU }),
			sym("s", strings.Repeat("x/", 100)+"t").With(func(f *F) { f.Format = tar.FormatGNU })}},
		want: root + longDirs(60) + strings.Repeat("d/", 60) + "f file 0644 0:0 \"1\"\ns symlink 0644 0:0 -> " + strings.Repeat("x/", 100) + "t"},
	{name: "xattrs byte exact and interned",
		layers: [][]F{{reg("a", "").With(func(f *F) {
			f.Xattrs = map[string]string{"security.capability": "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", "user.b": "v"}
		}), reg("b", "").With(func(f *F) { f.Xattrs = map[string]string{"user.b": "v"} })}},
		want: root + "a file 0644 0:0 \"\" security.capability=\"\\x01\\x00\\x00\\x02\\x00 \\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\" user.b=\"v\"\nb file 0644 0:0 \"\" user.b=\"v\""},
	{name: "libarchive xattr encoding",
		layers: [][]F{{reg("a", "").With(func(f *F) { f.PAX = map[string]string{"LIBARCHIVE.xattr.user.x%20y": "AAEC"} })}},
		want:   root + "a file 0644 0:0 \"\" user.x y=\"\\x00\\x01\\x02\""},
	{name: "devices fifos and special bits",
		layers: [][]F{{reg("c", "").With(typ(tar.TypeChar)).With(dev(4, 64)).With(mode(0o620)),
			reg("b", "").With(typ(tar.TypeBlock)).With(dev(8, 1)).With(mode(0o660)),
			reg("p", "").With(typ(tar.TypeFifo)).With(mode(0o600)),
			reg("su", "").With(mode(0o4755)), reg("sg", "").With(mode(0o2755)), dir("tmp").With(mode(0o1777))}},
		want: root + "b block 0660 0:0 8,1\nc char 0620 0:0 4,64\np fifo 0600 0:0\nsg file 2755 0:0 \"\"\nsu file 4755 0:0 \"\"\ntmp dir 1777 0:0"},
	{name: "big ids", layers: [][]F{{reg("a", "").With(owner(70000, 4000000000))}},
		want: root + "a file 0644 70000:4000000000 \"\""},
	{name: "non-UTF-8 names", layers: [][]F{{reg("\xff\xfe", "1"), reg("a\nb", "2"), reg("sp ace", "3")}},
		want: root + "a\nb file 0644 0:0 \"2\"\nsp ace file 0644 0:0 \"3\"\n\xff\xfe file 0644 0:0 \"1\""},
}

// Names at the kernel's limits: NAME_MAX (255 bytes) in ASCII and in two-byte UTF-8.
var (
	name255     = strings.Repeat("W", 255)
	utf8Name255 = strings.Repeat("é", 127) + "x"
)

// longPath returns a path of exactly n bytes whose components are 99 bytes long but the last.
func longPath(n int) string {
	var b strings.Builder
	for i := 0; b.Len()+100 < n; i++ {
		b.WriteString(strings.Repeat(string(rune('a'+i%26)), 99) + "/")
	}
	b.WriteString(strings.Repeat("z", n-b.Len()))
	return b.String()
}

// implicitDirs renders the implicit parent directories of p, as render lists them.
func implicitDirs(p string) string {
	var s strings.Builder
	for i := range len(p) {
		if p[i] == '/' {
			fmt.Fprintf(&s, "%s dir 0755 0:0\n", p[:i])
		}
	}
	return s.String()
}

func longDirs(n int) string {
	var s strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&s, "%s dir 0755 0:0\n", strings.TrimSuffix(strings.Repeat("d/", i), "/"))
	}
	return s.String()
}

func TestRules(t *testing.T) {
	for _, tc := range ruleTests {
		t.Run(tc.name, func(t *testing.T) {
			ix, raw, err := merge(t, tc.layers...)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("merge = %v, want error %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("merge: %v", err)
			}
			if got := render(ix, raw); got != tc.want {
				t.Errorf("merged tree:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

func TestMtimeNanoseconds(t *testing.T) {
	mt := time.Unix(1600000000, 123456789)
	ix, _, err := merge(t, []F{reg("a", "").With(func(f *F) { f.Mtime = mt })})
	if err != nil {
		t.Fatal(err)
	}
	id, err := ix.Lookup("a")
	if err != nil {
		t.Fatal(err)
	}
	if got := ix.Entry(id).Mtime; got != mt.UnixNano() {
		t.Errorf("mtime = %d, want %d", got, mt.UnixNano())
	}
}

func TestGlobalHeaderIsNotAnEntry(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeXGlobalHeader, Name: "pax_global_header", PAXRecords: map[string]string{"comment": "x"}, Format: tar.FormatPAX})
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "a", Mode: 0o644})
	tw.Close()
	ch, err := overlay.ReadChanges(&buf, overlay.ScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ch) != 1 || ch[0].Name != "a" {
		t.Errorf("ReadChanges = %+v, want only a", ch)
	}
}

func TestNlink(t *testing.T) {
	ix, _, err := merge(t, []F{dir("d"), dir("d/e"), dir("d/f"), reg("d/x", ""), reg("a", ""), hard("b", "a"), hard("d/c", "a")})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path string
		want uint32
	}{{".", 3}, {"d", 4}, {"d/e", 2}, {"a", 3}, {"d/x", 1}} {
		id, err := ix.Lookup(tc.path)
		if err != nil {
			t.Fatal(err)
		}
		if got := ix.Entry(id).Nlink; got != tc.want {
			t.Errorf("nlink(%s) = %d, want %d", tc.path, got, tc.want)
		}
	}
}

func TestTruncatedLayer(t *testing.T) {
	b := imagetest.Layer(reg("a", strings.Repeat("x", 5000)))
	_, err := overlay.ReadChanges(bytes.NewReader(b[:700]), overlay.ScanOptions{})
	if err == nil {
		// archive/tar reports truncation of data only when the next header is read.
		t.Fatal("ReadChanges(truncated) = nil error")
	}
}
