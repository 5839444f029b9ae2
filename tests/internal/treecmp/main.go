// Command treecmp prints how the directory tree GOT differs from WANT, with
// the same scan and comparison the end-to-end tests use:
//
//	go run ./tests/internal/treecmp [-ignore-mtime] [-ignore-root] WANT GOT
//
// It exits 1 when the trees differ.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/ocirender/ocirender/verify"
)

func main() {
	var opts verify.Options
	flag.BoolVar(&opts.IgnoreMtime, "ignore-mtime", false, "skip modification times")
	flag.BoolVar(&opts.IgnoreDirMtime, "ignore-dir-mtime", false, "skip directory modification times")
	flag.BoolVar(&opts.IgnoreOwnership, "ignore-ownership", false, "skip uid and gid")
	flag.BoolVar(&opts.IgnoreRoot, "ignore-root", false, "skip the root entry")
	flag.Parse()
	if flag.NArg() != 2 {
		fmt.Fprintln(os.Stderr, "usage: treecmp [flags] WANT GOT")
		os.Exit(2)
	}
	want, err := verify.ScanDir(flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, "treecmp:", err)
		os.Exit(2)
	}
	got, err := verify.ScanDir(flag.Arg(1))
	if err != nil {
		fmt.Fprintln(os.Stderr, "treecmp:", err)
		os.Exit(2)
	}
	diffs := verify.Compare(want, got, opts)
	for _, d := range diffs {
		fmt.Println(d)
	}
	fmt.Fprintf(os.Stderr, "%d entries wanted, %d got, %d differences\n", len(want), len(got), len(diffs))
	if len(diffs) > 0 {
		os.Exit(1)
	}
}
