package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/pflag"

	"github.com/ocirender/ocirender/export"
)

type exportFlags struct {
	imageFlags
	format, out, tmp string
}

var exportVerb = &verb{
	name:  "export",
	args:  "--format tar|dir -o OUT [flags] IMAGE",
	short: "write the merged image as a tar stream (-o - for stdout) or a directory",
	setup: func(fs *pflag.FlagSet) runFunc {
		f := &exportFlags{}
		fs.StringVarP(&f.format, "format", "f", "", "output format: tar or dir")
		fs.StringVarP(&f.out, "output", "o", "", "output path; for tar, - writes to stdout")
		fs.StringVar(&f.tmp, "tmp-dir", "", "where to keep decompressed layers while exporting (default $TMPDIR)")
		f.register(fs)
		return f.run
	},
}

func (f *exportFlags) run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) != 1 {
		return usagef("export: want one IMAGE, got %d arguments", len(args))
	}
	if f.out == "" {
		return usagef("export: -o OUT is required")
	}
	switch f.format {
	case "tar":
	case "dir":
		if f.out == "-" {
			return usagef("export: a directory cannot go to stdout")
		}
	case "":
		return usagef("export: --format is required (tar or dir)")
	default:
		return usagef("export: unknown format %q (want tar or dir)", f.format)
	}
	// Fail on an existing destination before doing any work.
	if f.out != "-" && f.format == "dir" {
		if err := export.CheckDirDest(f.out); err != nil {
			return err
		}
	}
	img, err := f.open(ctx, args[0], true, f.tmp, stderr)
	if err != nil {
		return err
	}
	defer img.Close()
	p := newProgress(stderr, f.quiet)
	defer p.done()
	total := img.Index.ContentSize()
	report := func(n int64) { p.update("writing", n, total) }
	switch f.format {
	case "tar":
		opts := export.TarOptions{Progress: report}
		if f.out == "-" {
			return export.Tar(ctx, stdout, img.Index, img.Content(), opts)
		}
		return export.WriteFileAtomic(ctx, f.out, func(w io.Writer) error {
			return export.Tar(ctx, w, img.Index, img.Content(), opts)
		})
	default:
		return export.Dir(ctx, f.out, img.Index, img.Content(), export.DirOptions{
			Progress: report,
			Notice: func(msg string) {
				p.done()
				fmt.Fprintf(stderr, "ocirender: notice: %s\n", msg)
			},
		})
	}
}
