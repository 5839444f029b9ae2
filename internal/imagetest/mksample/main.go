// Command mksample writes the small sample image that `make demo` works on: an OCI layout
// with three layers (gzip, zstd, uncompressed) that exercise whiteouts, an opaque directory,
// a symlinked parent, hard links, xattrs and special files.
//
//	go run ./internal/imagetest/mksample DIR
package main

import (
	"archive/tar"
	"fmt"
	"os"
	"strings"

	"github.com/ocirender/ocirender/internal/imagetest"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: mksample DIR")
		os.Exit(2)
	}
	if err := write(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "mksample:", err)
		os.Exit(1)
	}
}

func write(dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	reg, d, sym, hard := imagetest.Reg, imagetest.Dir, imagetest.Sym, imagetest.Hard
	mode := func(f imagetest.Entry, m int64) imagetest.Entry { f.Mode = m; return f }
	base := imagetest.Layer(
		d("etc"), reg("etc/os-release", "NAME=\"sample\"\nVERSION=1\n"),
		reg("etc/motd", "welcome to the sample image\n"),
		d("usr"), d("usr/bin"), d("usr/lib"), sym("lib", "usr/lib"),
		mode(reg("usr/bin/tool", "#!/bin/sh\necho tool v1\n"), 0o755),
		hard("usr/bin/tool-alias", "usr/bin/tool"),
		reg("usr/lib/libold.so", strings.Repeat("old library ", 1000)),
		d("var"), d("var/cache"), reg("var/cache/a", "stale"), reg("var/cache/b", "stale"),
		mode(d("tmp"), 0o1777),
		imagetest.Entry{Name: "dev/null", Type: tar.TypeChar, Devmajor: 1, Devminor: 3, Mode: 0o666},
	)
	update := imagetest.Layer(
		imagetest.Whiteout("etc/motd"),
		imagetest.Opaque("var/cache"), reg("var/cache/fresh", "fresh"),
		reg("lib/libnew.so", strings.Repeat("new library ", 2000)),
		imagetest.Whiteout("usr/lib/libold.so"),
		mode(reg("usr/bin/tool", "#!/bin/sh\necho tool v2\n"), 0o755),
		imagetest.Entry{Name: "usr/bin/ping", Body: "ping", Mode: 0o4755,
			Xattrs: map[string]string{"security.capability": imagetest.CapNetRaw}},
	)
	top := imagetest.Layer(
		reg("etc/hostname", "sample\n"),
		hard("usr/bin/pong", "usr/bin/ping"),
		imagetest.Entry{Name: "run/fifo", Type: tar.TypeFifo, Mode: 0o600},
		reg("name with spaces and ünïcödé", "odd names are fine\n"),
	)
	_, err := imagetest.WriteLayout(dir, "sample",
		imagetest.GzipBlob(base), imagetest.ZstdBlob(update), imagetest.TarBlob(top))
	return err
}
