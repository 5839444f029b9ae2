package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"sync"

	"github.com/spf13/pflag"

	"github.com/ocirender/ocirender"
	"github.com/ocirender/ocirender/verify"
)

type diffFlags struct {
	imageFlags
	refA, refB      string
	stat, json      bool
	ignoreOwnership bool
	ignoreMtime     bool
}

var diffVerb = &verb{
	name:  "diff",
	args:  "IMAGE_A [IMAGE_B] [--ref-a NAME] [--ref-b NAME] [flags]",
	short: "list the entries removed, added and changed from image A to image B (exit 1: different, 2: error)",
	setup: func(fs *pflag.FlagSet) runFunc {
		f := &diffFlags{}
		fs.StringVar(&f.refA, "ref-a", "", "pick this ref name (or docker RepoTag) in IMAGE_A")
		fs.StringVar(&f.refB, "ref-b", "", "pick this ref name (or docker RepoTag) in IMAGE_B (or in IMAGE_A, given alone)")
		fs.BoolVar(&f.stat, "stat", false, "print only the counts")
		fs.BoolVar(&f.json, "json", false, "print one JSON document instead of lines")
		fs.BoolVar(&f.ignoreOwnership, "ignore-ownership", false, "do not compare uids and gids")
		fs.BoolVar(&f.ignoreMtime, "ignore-mtime", false, "do not compare modification times")
		fs.StringVar(&f.platform, "platform", "", "pick this os/arch[/variant] from an image index (default: the host's)")
		fs.BoolVarP(&f.quiet, "quiet", "q", false, "show no progress")
		fs.StringVar(&f.cacheDir, "cache-dir", "", "keep scanned indexes here (default: $XDG_CACHE_HOME/ocirender)")
		fs.BoolVar(&f.noCache, "no-cache", false, "neither read nor write the index cache")
		return f.run
	},
}

func (f *diffFlags) run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var pathA, pathB string
	switch len(args) {
	case 1:
		if f.refA == "" || f.refB == "" {
			return usagef("diff: with one IMAGE, give --ref-a and --ref-b")
		}
		pathA, pathB = args[0], args[0]
	case 2:
		pathA, pathB = args[0], args[1]
	default:
		return usagef("diff: want IMAGE_A and IMAGE_B, or one IMAGE with --ref-a and --ref-b")
	}
	a, b, err := f.openBoth(ctx, pathA, pathB, stderr)
	if err != nil {
		return couldNotTell(err)
	}
	defer a.Close()
	defer b.Close()
	diffs, err := verify.CompareIndexes(ctx, side(a), side(b),
		verify.Options{IgnoreOwnership: f.ignoreOwnership, IgnoreMtime: f.ignoreMtime}, 0)
	if err != nil {
		return couldNotTell(err)
	}
	s := verify.Summarize(diffs)
	nameA, nameB := imageName(pathA, f.refA), imageName(pathB, f.refB)
	switch {
	case f.json:
		doc := jsonReport(map[string]any{"image_a": nameA, "image_b": nameB}, a.Index.Len(), b.Index.Len(), diffs, s, diffSides)
		if err := writeJSON(stdout, doc); err != nil {
			return couldNotTell(err)
		}
	default:
		if !f.stat {
			for _, d := range diffs {
				if _, err := fmt.Fprintln(stdout, diffLine(d)); err != nil {
					return couldNotTell(err)
				}
			}
		}
		if len(diffs) == 0 {
			fmt.Fprintf(stdout, "%s and %s are the same: %d entries\n", nameA, nameB, a.Index.Len())
		} else {
			fmt.Fprintln(stdout, summaryLine(s, "removed", "added"))
		}
	}
	if len(diffs) > 0 {
		return exitError{fmt.Errorf("%s and %s differ in %d places", nameA, nameB, len(diffs)), 1}
	}
	return nil
}

// openBoth opens the two images at once.
func (f *diffFlags) openBoth(ctx context.Context, pathA, pathB string, stderr io.Writer) (a, b *ocirender.Image, err error) {
	fa, fb := f.imageFlags, f.imageFlags
	fa.ref, fb.ref = f.refA, f.refB
	var errB error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		b, errB = fb.open(ctx, pathB, randomContent, "", stderr)
	}()
	a, err = fa.open(ctx, pathA, randomContent, "", stderr)
	wg.Wait()
	if err != nil || errB != nil {
		if a != nil {
			a.Close()
		}
		if b != nil {
			b.Close()
		}
		if err == nil {
			err = errB
		}
		return nil, nil, err
	}
	return a, b, nil
}

func side(img *ocirender.Image) verify.Side {
	s := verify.Side{Index: img.Index, Layers: img.Content()}
	for _, l := range img.Layers() {
		s.LayerDigests = append(s.LayerDigests, string(l.Digest))
	}
	return s
}

func imageName(p, ref string) string {
	if ref == "" {
		return p
	}
	return p + " (" + ref + ")"
}

// diffLine is one difference from A to B: "- path: what A had", "+ path: what B has",
// "~ path: field: A -> B".
func diffLine(d verify.Difference) string {
	p := strconv.Quote(d.Path)
	if d.Path == "" {
		p = "(root)"
	}
	switch d.Kind {
	case '-':
		return fmt.Sprintf("- %s: %s", p, d.Want)
	case '+':
		return fmt.Sprintf("+ %s: %s", p, d.Got)
	}
	return fmt.Sprintf("~ %s: %s: %s -> %s", p, d.Field, d.Want, d.Got)
}
