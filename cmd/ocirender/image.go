package main

import (
	"context"
	"fmt"
	"io"
	"runtime/debug"

	"github.com/spf13/pflag"

	"github.com/ocirender/ocirender"
	"github.com/ocirender/ocirender/internal/cli"
)

// imageFlags are the flags of every verb that opens an image.
type imageFlags struct {
	ref, platform string
	quiet         bool
	cacheDir      string
	noCache       bool
}

func (f *imageFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.ref, "ref", "", "pick the manifest with this ref name (or docker RepoTag)")
	fs.StringVar(&f.platform, "platform", "", "pick this os/arch[/variant] from an image index (default: the host's)")
	fs.BoolVarP(&f.quiet, "quiet", "q", false, "show no progress")
	fs.StringVar(&f.cacheDir, "cache-dir", "", "keep scanned indexes here (default: $XDG_CACHE_HOME/ocirender)")
	fs.BoolVar(&f.noCache, "no-cache", false, "neither read nor write the index cache")
}

// content says how a verb reads file contents.
type content uint8

const (
	noContent     content = iota
	randomContent         // through checkpoints: cat and other small reads
	streamContent         // exports: a cold scan spools each layer once
)

// options are the open options the flags ask for, with progress drawn on p and notices
// given to warn.
func (f *imageFlags) options(c content, tmp string, p *cli.Progress, warn func(string)) ocirender.Options {
	opts := ocirender.Options{
		Ref: f.ref, Platform: f.platform, Content: c != noContent, Spool: c == streamContent, TempDir: tmp,
		Events: p.Events(), Notice: warn,
	}
	opts.CacheDir = cli.CacheDir(f.cacheDir, f.noCache, warn)
	return opts
}

func (f *imageFlags) open(ctx context.Context, path string, c content, tmp string, stderr io.Writer) (*ocirender.Image, error) {
	p := cli.NewProgress(stderr, f.quiet)
	defer p.Done()
	return ocirender.Open(ctx, path, f.options(c, tmp, p, func(msg string) {
		p.Done()
		fmt.Fprintf(stderr, "ocirender: notice: %s\n", oneLine(msg))
	}))
}

func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown)"
	}
	v := bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += " " + s.Value[:12]
		}
	}
	return v
}
