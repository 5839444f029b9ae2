package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/ocirender/ocirender"
	"github.com/ocirender/ocirender/internal/cli"
)

type cacheFlags struct {
	cacheDir  string
	maxSize   string
	olderThan string
}

var cacheVerb = &verb{
	name:  "cache",
	args:  "du | prune [--max-size SIZE] [--older-than AGE] | clear",
	short: "show what the cache (indexes, spill files, pulled blobs) takes, or trim it, least recently used first",
	setup: func(fs *pflag.FlagSet) runFunc {
		f := &cacheFlags{}
		fs.StringVar(&f.cacheDir, "cache-dir", "", "the cache (default: $XDG_CACHE_HOME/ocirender)")
		fs.StringVar(&f.maxSize, "max-size", "", "prune: bring the cache down to this size (e.g. 500M, 10G)")
		fs.StringVar(&f.olderThan, "older-than", "", "prune: remove what was not used for this long (e.g. 30d, 12h)")
		return f.run
	},
}

func (f *cacheFlags) run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) != 1 {
		return usagef("cache: want du, prune or clear")
	}
	dir := cli.CacheDir(f.cacheDir, false, func(string) {})
	if dir == "" {
		return fmt.Errorf("cache: no cache directory (no home, and no --cache-dir)")
	}
	switch args[0] {
	case "du":
		kinds, err := ocirender.CacheUsage(dir)
		if err != nil {
			return fmt.Errorf("cache: %w", err)
		}
		var files int
		var bytes int64
		for _, k := range kinds {
			fmt.Fprintf(stdout, "%-6s %6d files %12s\n", k.Kind, k.Files, cli.MiB(k.Bytes))
			files += k.Files
			bytes += k.Bytes
		}
		fmt.Fprintf(stdout, "%-6s %6d files %12s  in %s\n", "total", files, cli.MiB(bytes), dir)
		return nil
	case "prune", "clear":
		opts := ocirender.PruneOptions{All: args[0] == "clear"}
		if args[0] == "prune" {
			var err error
			if f.maxSize != "" {
				if opts.MaxBytes, err = parseBytes(f.maxSize); err != nil {
					return usagef("cache: --max-size %q: %v", f.maxSize, err)
				}
			}
			if f.olderThan != "" {
				if opts.OlderThan, err = parseAge(f.olderThan); err != nil {
					return usagef("cache: --older-than %q: %v", f.olderThan, err)
				}
			}
			if opts.MaxBytes == 0 && opts.OlderThan == 0 {
				return usagef("cache: prune wants --max-size or --older-than (clear removes everything)")
			}
		} else if f.maxSize != "" || f.olderThan != "" {
			return usagef("cache: clear takes no --max-size or --older-than")
		}
		files, bytes, err := ocirender.PruneCache(dir, opts)
		if err != nil {
			return fmt.Errorf("cache: %w", err)
		}
		fmt.Fprintf(stdout, "removed %d files, %s\n", files, cli.MiB(bytes))
		return nil
	}
	return usagef("cache: unknown action %q (want du, prune or clear)", args[0])
}

// parseBytes reads 123, 500K, 20M, 10G, 1T (powers of 1024).
func parseBytes(s string) (int64, error) {
	mult := int64(1)
	for i, suffix := range []string{"K", "M", "G", "T"} {
		if rest, ok := strings.CutSuffix(strings.ToUpper(s), suffix); ok {
			mult, s = 1<<(10*(i+1)), rest
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("want a size like 500M or 10G")
	}
	return n * mult, nil
}

// parseAge reads a Go duration (12h, 90m) or a number of days (30d).
func parseAge(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n <= 0 || n > 100000 {
			return 0, fmt.Errorf("want an age like 30d or 12h")
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("want an age like 30d or 12h")
	}
	return d, nil
}
