package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"github.com/ocirender/ocirender"
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

func (f *imageFlags) open(ctx context.Context, path string, c content, tmp string, stderr io.Writer) (*ocirender.Image, error) {
	p := newProgress(stderr, f.quiet)
	defer p.done()
	opts := ocirender.Options{
		Ref: f.ref, Platform: f.platform, Content: c != noContent, Spool: c == streamContent, TempDir: tmp,
		Progress: func(done, total int64) { p.update("reading layers", done, total) },
		Notice: func(msg string) {
			p.done()
			fmt.Fprintf(stderr, "ocirender: notice: %s\n", oneLine(msg))
		},
	}
	if !f.noCache {
		opts.CacheDir = f.cacheDir
		if opts.CacheDir == "" {
			dir, err := ocirender.DefaultCacheDir()
			if err != nil {
				opts.Notice(fmt.Sprintf("no index cache: %v", err))
			}
			opts.CacheDir = dir
		}
	}
	return ocirender.Open(ctx, path, opts)
}

// progress draws one status line on stderr when stderr is a terminal, at most ten times a
// second, and erases it when done.
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	on    bool
	last  time.Time
	drawn bool
}

func newProgress(w io.Writer, quiet bool) *progress {
	p := &progress{w: w}
	if f, ok := w.(*os.File); ok && !quiet {
		_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
		p.on = err == nil
	}
	return p
}

func (p *progress) update(what string, done, total int64) {
	if !p.on {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if now := time.Now(); now.Sub(p.last) >= 100*time.Millisecond {
		p.last = now
		if total > 0 {
			fmt.Fprintf(p.w, "\r\x1b[K%s: %d%% (%s of %s)", what, done*100/total, mib(done), mib(total))
		} else {
			fmt.Fprintf(p.w, "\r\x1b[K%s: %s", what, mib(done))
		}
		p.drawn = true
	}
}

func (p *progress) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.drawn = false
	}
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

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
