package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/pflag"

	"github.com/ocirender/ocirender/index"
)

type lsFlags struct {
	imageFlags
	long, recursive bool
	layers          bool
}

var lsVerb = &verb{
	name:  "ls",
	args:  "[-l] [-R] [flags] IMAGE [PATH]",
	short: "list a directory of the merged image (PATH defaults to /; symlinks in PATH are followed inside the image)",
	setup: func(fs *pflag.FlagSet) runFunc {
		f := &lsFlags{}
		fs.BoolVarP(&f.long, "long", "l", false, "long listing: mode, links, owner, size, mtime, link target")
		fs.BoolVarP(&f.recursive, "recursive", "R", false, "list subdirectories recursively, one path per line")
		fs.BoolVar(&f.layers, "layers", false, "start each line with the layer the entry came from (- for implicit directories)")
		f.register(fs)
		return f.run
	},
}

func (f *lsFlags) run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) < 1 || len(args) > 2 {
		return usagef("ls: want IMAGE [PATH]")
	}
	p := "/"
	if len(args) == 2 {
		p = args[1]
	}
	img, err := f.open(ctx, args[0], noContent, "", stderr)
	if err != nil {
		return err
	}
	defer img.Close()
	ix := img.Index
	id, err := ix.Resolve(p, true)
	if err != nil {
		return fmt.Errorf("%s: %w", args[0], err)
	}
	w := newLineWriter(stdout)
	print := func(id index.ID, name string) {
		prefix := ""
		if f.layers {
			prefix = "-\t"
			if l := ix.Inode(ix.Ino(id)).Layer; l >= 0 {
				prefix = strconv.Itoa(l) + "\t"
			}
		}
		if f.long {
			w.line(prefix + longLine(ix, id, name))
		} else {
			w.line(prefix + escapeName(name))
		}
	}
	switch {
	case ix.Type(id) != index.Dir:
		print(id, strings.TrimPrefix(p, "/"))
	case f.recursive:
		err = ix.Walk(id, func(k index.ID, kp string) error {
			if k != id {
				print(k, kp)
			}
			return ctx.Err()
		})
	default:
		for _, k := range ix.Children(id) {
			print(k, ix.Name(k))
		}
	}
	if err != nil {
		return err
	}
	return w.flush()
}

// longLine formats one entry as ls -l does, with numeric owners, full-precision mtimes in UTC
// and device numbers in place of the size.
func longLine(ix *index.Index, id index.ID, name string) string {
	e := ix.Entry(id)
	size := strconv.FormatInt(e.Size, 10)
	if e.Type == index.Char || e.Type == index.Block {
		size = fmt.Sprintf("%d,%d", e.Devmajor, e.Devminor)
	}
	s := fmt.Sprintf("%s %3d %5d %5d %10s %s %s", modeString(e.Type, e.Mode), e.Nlink, e.UID, e.GID, size,
		time.Unix(0, e.Mtime).UTC().Format("2006-01-02 15:04:05.000000000"), escapeName(name))
	if e.Type == index.Symlink {
		s += " -> " + escapeName(e.Link)
	}
	return s
}

func modeString(t index.Type, mode uint32) string {
	b := []byte("?rwxrwxrwx")
	b[0] = "?dl-cbps"[typeIndex(t)]
	for i := 0; i < 9; i++ {
		if mode&(1<<(8-i)) == 0 {
			b[i+1] = '-'
		}
	}
	special := func(bit uint32, pos int, set, unset byte) {
		if mode&bit != 0 {
			if b[pos] == '-' {
				b[pos] = unset
			} else {
				b[pos] = set
			}
		}
	}
	special(0o4000, 3, 's', 'S')
	special(0o2000, 6, 's', 'S')
	special(0o1000, 9, 't', 'T')
	return string(b)
}

func typeIndex(t index.Type) int {
	switch t {
	case index.Dir:
		return 1
	case index.Symlink:
		return 2
	case index.Reg:
		return 3
	case index.Char:
		return 4
	case index.Block:
		return 5
	case index.Fifo:
		return 6
	case index.Socket:
		return 7
	}
	return 0
}

// escapeName keeps a listing one entry per line whatever the names hold: control bytes,
// backslashes and invalid UTF-8 are written as C-style escapes; everything else as is.
func escapeName(s string) string {
	if utf8.ValidString(s) && !strings.ContainsAny(s, "\\\x7f") && !hasControl(s) {
		return s
	}
	var b strings.Builder
	for len(s) > 0 {
		r, n := utf8.DecodeRuneInString(s)
		switch {
		case r == utf8.RuneError && n == 1:
			b.WriteString(`\x` + hex.EncodeToString([]byte{s[0]}))
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			b.WriteString(`\x` + hex.EncodeToString([]byte{byte(r)}))
		default:
			b.WriteString(s[:n])
		}
		s = s[n:]
	}
	return b.String()
}

func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 {
			return true
		}
	}
	return false
}
