package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/spf13/pflag"

	"github.com/ocirender/ocirender/internal/cli"
	"github.com/ocirender/ocirender/verify"
)

// exitError gives an error the exit status it stands for: verify and diff exit 1 when
// the trees differ and 2 when they could not tell (unreadable input).
type exitError struct {
	error
	code int
}

func (e exitError) Unwrap() error { return e.error }
func (e exitError) ExitCode() int { return e.code }

// couldNotTell marks err as exit status 2 (usage errors already are).
func couldNotTell(err error) error {
	var u cli.UsageError
	if err == nil || errors.As(err, &u) {
		return err
	}
	return exitError{err, 2}
}

type verifyFlags struct {
	imageFlags
	image, reference string
	ignoreOwnership  bool
	ignoreMtime      bool
	json             bool
	tmp              string
}

var verifyVerb = &verb{
	name:  "verify",
	args:  "OUTPUT (--image IMAGE | --reference DIR) [flags]",
	short: "check an exported squashfs, tar (- for stdin) or directory entry by entry (exit 1: different, 2: error)",
	setup: func(fs *pflag.FlagSet) runFunc {
		f := &verifyFlags{}
		fs.StringVar(&f.image, "image", "", "the image OUTPUT was made from")
		fs.StringVar(&f.reference, "reference", "", "compare with this directory instead of an image")
		fs.BoolVar(&f.ignoreOwnership, "ignore-ownership", false, "do not compare uids and gids")
		fs.BoolVar(&f.ignoreMtime, "ignore-mtime", false, "do not compare modification times")
		fs.BoolVar(&f.json, "json", false, "print one JSON document instead of lines")
		fs.StringVar(&f.tmp, "tmp-dir", "", "where to keep decompressed layers while hashing (default $TMPDIR)")
		f.register(fs)
		return f.run
	},
}

func (f *verifyFlags) run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) != 1 {
		return usagef("verify: want one OUTPUT, got %d arguments", len(args))
	}
	if (f.image == "") == (f.reference == "") {
		return usagef("verify: give either --image IMAGE or --reference DIR")
	}
	out := args[0]
	format := verify.FormatTar
	if out != "-" {
		var err error
		if format, err = verify.DetectFormat(out); err != nil {
			return couldNotTell(err)
		}
	}
	against, want, got, err := f.scan(ctx, out, format, stderr)
	if err != nil {
		return couldNotTell(err)
	}
	if format == verify.FormatSquashfs {
		want = verify.Squashed(want)
	}
	diffs := verify.Compare(want, got, verify.Options{IgnoreOwnership: f.ignoreOwnership, IgnoreMtime: f.ignoreMtime})
	s := verify.Summarize(diffs)
	if f.json {
		doc := jsonReport(map[string]any{"output": out, "format": format, "against": against},
			len(want), len(got), diffs, s, verifySides)
		if err := writeJSON(stdout, doc); err != nil {
			return couldNotTell(err)
		}
	} else {
		for _, d := range diffs {
			if _, err := fmt.Fprintln(stdout, d.String()); err != nil {
				return couldNotTell(err)
			}
		}
		if len(diffs) == 0 {
			fmt.Fprintf(stdout, "%s (%s) matches %s: %d entries\n", out, format, against, len(got))
		} else {
			fmt.Fprintf(stdout, "%s (%s) differs from %s: %s\n", out, format, against, summaryLine(s, "missing", "extra"))
		}
	}
	if len(diffs) > 0 {
		return exitError{fmt.Errorf("%s differs from %s in %d places", out, against, len(diffs)), 1}
	}
	return nil
}

// scan lists both sides at once: what the output must hold and what it holds.
func (f *verifyFlags) scan(ctx context.Context, out string, format verify.Format, stderr io.Writer) (against string, want, got []verify.Entry, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var gotErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		if out == "-" {
			got, gotErr = verify.ScanTar(ctx, os.Stdin)
		} else {
			got, gotErr = verify.ScanOutput(ctx, out, format, 0)
		}
		if gotErr != nil {
			cancel()
		}
	}()
	var wantErr error
	if f.reference != "" {
		against = "reference " + f.reference
		want, wantErr = verify.ScanDir(f.reference)
	} else {
		against = "image " + f.image
		if f.ref != "" {
			against += " (" + f.ref + ")"
		}
		want, wantErr = f.fromImage(ctx, stderr)
	}
	if wantErr != nil {
		cancel()
	}
	wg.Wait()
	switch {
	case gotErr != nil && !errors.Is(gotErr, context.Canceled):
		return "", nil, nil, fmt.Errorf("%s: %w", out, gotErr)
	case wantErr != nil:
		return "", nil, nil, wantErr
	case gotErr != nil:
		return "", nil, nil, gotErr
	}
	return against, want, got, nil
}

// fromImage lists the image's merged tree with every file's content hashed.
func (f *verifyFlags) fromImage(ctx context.Context, stderr io.Writer) ([]verify.Entry, error) {
	img, err := f.open(ctx, f.image, streamContent, f.tmp, stderr)
	if err != nil {
		return nil, err
	}
	defer img.Close()
	return verify.FromIndex(ctx, img.Index, verify.IndexOptions{Layers: img.Content()})
}

// summaryLine counts differences for humans: "2 missing, 1 extra, 3 changed (mode 2,
// digest 1)".
func summaryLine(s verify.Summary, minus, plus string) string {
	line := fmt.Sprintf("%d %s, %d %s, %d changed", s.Missing, minus, s.Extra, plus, s.Changed)
	if len(s.Fields) > 0 {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(s.Fields)) {
			parts = append(parts, fmt.Sprintf("%s %d", k, s.Fields[k]))
		}
		line += " (" + strings.Join(parts, ", ") + ")"
	}
	return line
}

// sides names the two sides of a comparison in --json output.
type sides struct {
	a, b        string // "want", "got" or "a", "b"
	minus, plus string // what a path of one side only is: "missing", "extra" or "removed", "added"
}

var (
	verifySides = sides{"want", "got", "missing", "extra"}
	diffSides   = sides{"a", "b", "removed", "added"}
)

// report is the --json document: the differences (with the raw path, and its bytes in
// base64 when it is not valid UTF-8, which JSON cannot carry) and their counts. extra
// holds the fields that say what was compared.
func jsonReport(extra map[string]any, nA, nB int, diffs []verify.Difference, s verify.Summary, k sides) map[string]any {
	list := make([]map[string]any, 0, len(diffs))
	for _, d := range diffs {
		m := map[string]any{"kind": string(d.Kind), "path": d.Path}
		if !utf8.ValidString(d.Path) {
			m["path_base64"] = base64.StdEncoding.EncodeToString([]byte(d.Path))
		}
		if d.Field != "" {
			m["field"] = d.Field
		}
		if d.Kind != '+' {
			m[k.a] = d.Want
		}
		if d.Kind != '-' {
			m[k.b] = d.Got
		}
		list = append(list, m)
	}
	doc := map[string]any{
		"equal":       len(diffs) == 0,
		"differences": list,
		"summary": map[string]any{
			"entries": map[string]int{k.a: nA, k.b: nB},
			k.minus:   s.Missing, k.plus: s.Extra, "changed": s.Changed,
			"fields": s.Fields, "differences": len(diffs),
		},
	}
	for key, v := range extra {
		doc[key] = v
	}
	return doc
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
