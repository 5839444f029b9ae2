package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/ocirender/ocirender"
	"github.com/ocirender/ocirender/export"
	"github.com/ocirender/ocirender/internal/cli"
	"github.com/ocirender/ocirender/squashfs"
)

type exportFlags struct {
	imageFlags
	format, out, tmp string
	squashfs         squashfsFlags
}

// squashfsFlags are the flags of --format squashfs.
type squashfsFlags struct {
	compression string
	level       int
	blockSize   string
	threads     int
	exportable  bool
}

func (s *squashfsFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&s.compression, "compression", squashfs.Zstd, "squashfs: compressor, zstd, gzip, xz or lz4 (lz4: --level 0 fast, 1-9 high compression)")
	fs.IntVar(&s.level, "level", 0, "squashfs: compression level (default: zstd 3, gzip 9)")
	fs.StringVar(&s.blockSize, "block-size", "128K", "squashfs: data block size, a power of two from 4K to 1M")
	fs.IntVar(&s.threads, "threads", 0, "squashfs: compressor threads (default: all cores)")
	fs.BoolVar(&s.exportable, "exportable", false, "squashfs: add the NFS export table")
}

// options checks the flags; SOURCE_DATE_EPOCH, when set, is the image's creation time.
func (s *squashfsFlags) options(getenv func(string) string) (squashfs.Options, error) {
	o := squashfs.Options{Compression: s.compression, Level: s.level, Threads: s.threads, Exportable: s.exportable}
	bs, err := parseSize(s.blockSize)
	if err != nil || bs < 4096 || bs > 1<<20 || bs&(bs-1) != 0 {
		return o, usagef("export: --block-size %q: want a power of two from 4K to 1M", s.blockSize)
	}
	o.BlockSize = bs
	switch s.compression {
	case squashfs.Zstd, squashfs.Gzip, squashfs.XZ, squashfs.LZ4:
	default:
		return o, usagef("export: unknown --compression %q (want zstd, gzip, xz or lz4)", s.compression)
	}
	if s.threads < 0 {
		return o, usagef("export: --threads %d: want 0 (all cores) or more", s.threads)
	}
	if v := getenv("SOURCE_DATE_EPOCH"); v != "" {
		sec, err := strconv.ParseInt(v, 10, 64)
		if err != nil || sec < 0 {
			return o, usagef("export: SOURCE_DATE_EPOCH=%q is not a number of seconds", v)
		}
		o.MkfsTime = time.Unix(sec, 0)
	}
	return o, nil
}

// parseSize reads 4096, 4K, 128k, 1M.
func parseSize(s string) (int, error) {
	mult := 1
	switch {
	case strings.HasSuffix(s, "K"), strings.HasSuffix(s, "k"):
		mult, s = 1<<10, s[:len(s)-1]
	case strings.HasSuffix(s, "M"), strings.HasSuffix(s, "m"):
		mult, s = 1<<20, s[:len(s)-1]
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 || n > 1<<20 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n * mult, nil
}

var exportVerb = &verb{
	name:  "export",
	args:  "--format tar|dir|squashfs -o OUT [flags] IMAGE",
	short: "write the merged image as a tar stream (-o - for stdout), a directory or a squashfs image",
	setup: func(fs *pflag.FlagSet) runFunc {
		f := &exportFlags{}
		fs.StringVarP(&f.format, "format", "f", "", "output format: tar, dir or squashfs")
		fs.StringVarP(&f.out, "output", "o", "", "output path; for tar, - writes to stdout")
		fs.StringVar(&f.tmp, "tmp-dir", "", "where to keep decompressed layers while exporting (default $TMPDIR)")
		f.squashfs.register(fs)
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
	if f.format == "" {
		return usagef("export: --format is required (tar, dir or squashfs)")
	}
	p := cli.NewProgress(stderr, f.quiet)
	defer p.Done()
	warn := func(msg string) {
		p.Done()
		fmt.Fprintf(stderr, "ocirender: notice: %s\n", oneLine(msg))
	}
	spec := ocirender.Spec{Format: f.format, Path: f.out, Dir: export.DirOptions{Notice: warn}}
	if f.out == "-" {
		spec.Path, spec.Writer = "", stdout
	}
	if err := checkSpec("export", &spec, &f.squashfs); err != nil {
		return err
	}
	spec.Squashfs.Notice = warn
	spec.Open = f.options(streamContent, f.tmp, p, warn)
	return ocirender.Convert(ctx, args[0], spec)
}

// checkSpec validates the output of verb before any work: the format and where it goes
// (ocirender.Spec.Check: a bad one is a usage error, an existing directory is not), and for
// squashfs the flags of its encoder.
func checkSpec(verb string, spec *ocirender.Spec, sq *squashfsFlags) error {
	if err := spec.Check(); err != nil {
		if errors.Is(err, ocirender.ErrSpec) {
			return usagef("%s: %s", verb, strings.TrimPrefix(err.Error(), "ocirender: "+ocirender.ErrSpec.Error()+": "))
		}
		return err
	}
	if spec.Format != ocirender.FormatSquashfs {
		return nil
	}
	var err error
	spec.Squashfs, err = sq.options(os.Getenv)
	return err
}
