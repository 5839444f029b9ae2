package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/pflag"

	"github.com/ocirender/ocirender"
	"github.com/ocirender/ocirender/internal/cli"
	"github.com/ocirender/ocirender/pull"
)

type pullFlags struct {
	platform, format, out, tmp string
	quiet, insecure, noCache   bool
	cacheDir                   string
	jobs                       int
	squashfs                   squashfsFlags
}

var pullVerb = &verb{
	name:  "pull",
	args:  "--format squashfs|tar|dir|oci -o OUT [flags] REF",
	short: "fetch an image from its registry and convert it while the layers download",
	setup: func(fs *pflag.FlagSet) runFunc {
		f := &pullFlags{}
		fs.StringVarP(&f.format, "format", "f", "", "output format: squashfs, tar, dir or oci (an OCI image layout)")
		fs.StringVarP(&f.out, "output", "o", "", "output path; for tar, - writes to stdout")
		fs.StringVar(&f.platform, "platform", "", "pick this os/arch[/variant] from an image index (default: linux and the host's arch)")
		fs.BoolVar(&f.insecure, "insecure", false, "allow a registry over plain HTTP (loopback and private addresses always may)")
		fs.IntVarP(&f.jobs, "jobs", "j", 4, "layers downloaded at once")
		fs.StringVar(&f.tmp, "tmp-dir", "", "where to keep decompressed layers while converting (default $TMPDIR)")
		fs.BoolVarP(&f.quiet, "quiet", "q", false, "show no progress")
		fs.StringVar(&f.cacheDir, "cache-dir", "", "keep blobs and scanned indexes here (default: $XDG_CACHE_HOME/ocirender)")
		fs.BoolVar(&f.noCache, "no-cache", false, "keep no blobs or indexes: download into a temporary directory")
		f.squashfs.register(fs)
		return f.run
	},
}

func (f *pullFlags) run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) != 1 {
		return usagef("pull: want one REF, got %d arguments", len(args))
	}
	if f.out == "" {
		return usagef("pull: -o OUT is required")
	}
	if f.jobs < 1 {
		return usagef("pull: --jobs %d: want 1 or more", f.jobs)
	}
	spec := ocirender.Spec{Format: f.format, Path: f.out}
	switch {
	case f.format == "":
		return usagef("pull: --format is required (squashfs, tar, dir or oci)")
	case f.format == "oci":
		if f.out == "-" {
			return usagef("pull: --format oci cannot go to stdout")
		}
	default:
		if f.format == ocirender.FormatTar && f.out == "-" {
			spec.Path, spec.Writer = "", stdout
		}
		if err := checkSpec("pull", &spec, &f.squashfs); err != nil {
			return err
		}
	}
	var bars *cli.Bars // drawn once the layers are known; notices go above them
	warn := func(msg string) {
		line := "ocirender: notice: " + oneLine(msg)
		if bars != nil {
			bars.Println(line)
			return
		}
		fmt.Fprintln(stderr, line)
	}
	spec.Open = ocirender.Options{Platform: f.platform, TempDir: f.tmp, Notice: warn}
	spec.Dir.Notice, spec.Squashfs.Notice = warn, warn
	spec.Open.CacheDir = cli.CacheDir(f.cacheDir, f.noCache, warn)
	opts := pull.Options{Platform: f.platform, Insecure: f.insecure, Jobs: f.jobs}
	opts.BlobDir = ocirender.BlobDir(spec.Open.CacheDir)
	// Resolve first, to name the layers of the progress bars.
	r, err := pull.Resolve(ctx, args[0], opts)
	if err != nil {
		return err
	}
	defer r.Close()
	names := make([]string, len(r.Layers))
	for i, l := range r.Layers {
		names[i] = l.Digest.Hex[:12]
	}
	bars = cli.NewBars(stderr, f.quiet, names)
	defer bars.Done()
	r.Progress, spec.Open.Events = bars.Watch()
	if f.format == "oci" {
		return r.WriteLayout(ctx, f.out)
	}
	_, err = ocirender.PullRemote(ctx, r, spec)
	return err
}
