// Command ocirender turns OCI images into tar streams, directories and squashfs images,
// inspects files of the merged image without extracting anything, checks outputs and
// compares images.
//
//	ocirender export --format tar|dir|squashfs -o OUT [--ref NAME] [--platform P] IMAGE
//	ocirender ls [-l] [-R] [--layers] IMAGE [PATH]
//	ocirender stat [-L] IMAGE PATH
//	ocirender cat [--no-follow] IMAGE PATH
//	ocirender verify OUTPUT --image IMAGE | --reference DIR
//	ocirender diff IMAGE_A [IMAGE_B]
//
// Exit status: 0 success, 1 failure, 2 usage error; verify and diff: 0 equal, 1 different,
// 2 error. Opened images go through the index cache ($XDG_CACHE_HOME/ocirender) unless
// --no-cache is given.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/ocirender/ocirender/internal/cli"
)

func main() {
	cli.LowerGC()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	stopProfile := cli.Profile()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stopProfile()
	stop()
	os.Exit(report(err, os.Stderr))
}

// report prints err as one line and returns the exit status for it.
func report(err error, stderr io.Writer) int {
	return cli.Report("ocirender", "Run 'ocirender help' for usage.", err, stderr)
}

var (
	usagef  = cli.Usagef
	oneLine = cli.OneLine
)

// runFunc runs a verb with its positional arguments.
type runFunc func(ctx context.Context, args []string, stdout, stderr io.Writer) error

type verb struct {
	name, args, short string
	// setup registers the verb's flags and returns the function that runs it with them.
	setup func(fs *pflag.FlagSet) runFunc
}

var verbs []*verb

func init() {
	verbs = []*verb{exportVerb, pullVerb, catVerb, lsVerb, statVerb, verifyVerb, diffVerb, cacheVerb, versionVerb}
}

const usageHead = `ocirender turns OCI container images into squashfs images, tar streams and
directories, from a local layout or straight from a registry, and inspects the merged image
without extracting it.

IMAGE is an OCI image layout or a 'docker save' directory, or either as a .tar archive.
REF is a registry reference: registry/repo:tag or registry/repo@sha256:...

Usage:
`

func usage(w io.Writer) {
	fmt.Fprint(w, usageHead)
	for _, v := range verbs {
		fmt.Fprintf(w, "  ocirender %-8s %s\n      %s\n", v.name, v.args, v.short)
	}
	fmt.Fprint(w, "\nRun 'ocirender VERB --help' for the flags of a verb.\n")
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		usage(stderr)
		return cli.UsageError{Err: errors.New("no verb given")}
	}
	name := args[0]
	switch name {
	case "help", "-h", "--help":
		if len(args) > 1 {
			return run(ctx, []string{args[1], "--help"}, stdout, stderr)
		}
		usage(stdout)
		return nil
	}
	for _, v := range verbs {
		if v.name != name {
			continue
		}
		fs := pflag.NewFlagSet(v.name, pflag.ContinueOnError)
		fs.SetOutput(io.Discard)
		fs.SortFlags = false
		runVerb := v.setup(fs)
		fs.Usage = func() {}
		if err := fs.Parse(args[1:]); err != nil {
			if errors.Is(err, pflag.ErrHelp) {
				fmt.Fprintf(stdout, "Usage: ocirender %s %s\n\n%s\n\nFlags:\n%s", v.name, v.args, v.short, fs.FlagUsages())
				return err
			}
			return cli.UsageError{Err: fmt.Errorf("%s: %w", v.name, err)}
		}
		return runVerb(ctx, fs.Args(), stdout, stderr)
	}
	return usagef("unknown verb %q", name)
}

var versionVerb = &verb{
	name: "version", short: "print the version",
	setup: func(*pflag.FlagSet) runFunc {
		return func(_ context.Context, _ []string, stdout, _ io.Writer) error {
			fmt.Fprintln(stdout, "ocirender", version())
			return nil
		}
	},
}
