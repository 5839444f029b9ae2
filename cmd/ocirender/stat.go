package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/spf13/pflag"

	"github.com/ocirender/ocirender/index"
)

type statFlags struct {
	imageFlags
	follow bool
}

var statVerb = &verb{
	name:  "stat",
	args:  "[flags] IMAGE PATH",
	short: "show everything the index knows about one path (symlinks in parents are followed inside the image)",
	setup: func(fs *pflag.FlagSet) runFunc {
		f := &statFlags{}
		fs.BoolVarP(&f.follow, "dereference", "L", false, "follow PATH itself if it is a symlink")
		f.register(fs)
		return f.run
	},
}

func (f *statFlags) run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) != 2 {
		return usagef("stat: want IMAGE PATH")
	}
	img, err := f.open(ctx, args[0], noContent, "", stderr)
	if err != nil {
		return err
	}
	defer img.Close()
	ix := img.Index
	id, err := ix.Resolve(args[1], f.follow)
	if err != nil {
		return fmt.Errorf("%s: %w", args[0], err)
	}
	e := ix.Entry(id)
	w := newLineWriter(stdout)
	w.line("Path:   /" + escapeName(ix.Path(id)))
	w.line("Type:   " + e.Type.String())
	w.line(fmt.Sprintf("Mode:   %04o (%s)", e.Mode, modeString(e.Type, e.Mode)))
	w.line(fmt.Sprintf("Owner:  %d:%d", e.UID, e.GID))
	w.line(fmt.Sprintf("Size:   %d", e.Size))
	w.line(fmt.Sprintf("Links:  %d", e.Nlink))
	w.line(fmt.Sprintf("Inode:  %d", e.Ino+1))
	w.line("Mtime:  " + time.Unix(0, e.Mtime).UTC().Format(time.RFC3339Nano))
	if e.Type == index.Symlink {
		w.line("Target: " + escapeName(e.Link))
	}
	if e.Type == index.Char || e.Type == index.Block {
		w.line(fmt.Sprintf("Device: %d,%d", e.Devmajor, e.Devminor))
	}
	if e.Layer >= 0 {
		l := img.Layers()[e.Layer]
		w.line(fmt.Sprintf("Layer:  %d (%s)", e.Layer, l.Digest))
		if e.Type == index.Reg {
			w.line(fmt.Sprintf("Offset: %d", e.Offset))
		}
	} else {
		w.line("Layer:  none (implicit parent directory)")
	}
	for _, x := range e.Xattrs {
		w.line(fmt.Sprintf("Xattr:  %s=%s", escapeName(x.Name), xattrValue(x.Value)))
	}
	return w.flush()
}

// xattrValue shows printable values quoted and binary ones in hex, as getfattr does.
func xattrValue(v string) string {
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] == 0x7f {
			return fmt.Sprintf("0x%x", v)
		}
	}
	if !utf8.ValidString(v) {
		return fmt.Sprintf("0x%x", v)
	}
	return strconv.Quote(v)
}

// lineWriter buffers output lines and remembers the first write error.
type lineWriter struct {
	w   *bufio.Writer
	err error
}

func newLineWriter(w io.Writer) *lineWriter { return &lineWriter{w: bufio.NewWriter(w)} }

func (l *lineWriter) line(s string) {
	if l.err == nil {
		_, l.err = fmt.Fprintln(l.w, s)
	}
}

func (l *lineWriter) flush() error {
	if l.err != nil {
		return l.err
	}
	return l.w.Flush()
}
