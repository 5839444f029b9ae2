// Command ocimount mounts the merged root filesystem of an OCI image read-only with FUSE.
// Nothing is extracted: the index of the image is loaded from the cache (or built by reading
// the layers once), and file contents are decompressed on demand.
//
//	ocimount [flags] IMAGE MOUNTPOINT
//	ocimount -u MOUNTPOINT
//
// In the foreground (the default) it prints one line on stderr once the mount is ready and
// serves it until it is unmounted: by `ocimount -u`, umount(8), or SIGINT/SIGTERM (a second
// signal detaches a busy mount lazily). --daemon returns once the mount is ready and leaves
// a detached process serving it.
//
// Exit status: 0 success, 1 failure, 2 usage error.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/ocirender/ocirender/internal/cli"
)

func main() {
	cli.LowerGC()
	os.Exit(report(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr), os.Stderr))
}

// report prints err as one line and returns the exit status for it.
func report(err error, stderr io.Writer) int {
	return cli.Report("ocimount", "Run 'ocimount --help' for usage.", err, stderr)
}

var (
	usagef  = cli.Usagef
	oneLine = cli.OneLine
)

const usageText = `Usage:
  ocimount [flags] IMAGE MOUNTPOINT    mount the merged image read-only
  ocimount -u MOUNTPOINT               unmount it

IMAGE is an OCI image layout or a 'docker save' directory, or either as a .tar archive, or
a registry reference (REGISTRY/REPO:TAG or @sha256:..., docker://REF to be explicit), pulled
into the blob cache with the credentials of ~/.docker/config.json.
MOUNTPOINT must be an empty directory. Nothing is extracted: files are decompressed on
demand. In the foreground, SIGINT or SIGTERM unmounts (a second one detaches a busy mount).

Flags:
`

// flags are the command line of ocimount.
type flags struct {
	ref, platform string
	cacheDir      string
	noCache       bool
	daemon        bool
	options       []string
	debug         bool
	quiet         bool
	unmount       bool
	insecure      bool
	jobs          int

	allowOther bool // from -o
}

func (f *flags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.ref, "ref", "", "pick the manifest with this ref name (or docker RepoTag)")
	fs.StringVar(&f.platform, "platform", "", "pick this os/arch[/variant] from an image index (default: the host's)")
	fs.StringVar(&f.cacheDir, "cache-dir", "", "keep scanned indexes here (default: $XDG_CACHE_HOME/ocirender)")
	fs.BoolVar(&f.noCache, "no-cache", false, "neither read nor write the index cache")
	fs.BoolVar(&f.daemon, "daemon", false, "return once the mount is ready, serving it from a detached process")
	fs.StringArrayVarP(&f.options, "options", "o", nil, "mount options, comma-separated: allow_other (ro and default_permissions are always on)")
	fs.BoolVar(&f.debug, "debug", false, "log every FUSE request on stderr (stays in the foreground)")
	fs.BoolVarP(&f.quiet, "quiet", "q", false, "show no progress")
	fs.BoolVarP(&f.unmount, "unmount", "u", false, "unmount MOUNTPOINT")
	fs.BoolVar(&f.insecure, "insecure", false, "registry references: allow plain HTTP (loopback and private addresses always may)")
	fs.IntVarP(&f.jobs, "jobs", "j", 4, "registry references: layers downloaded at once")
}

// parseOptions checks the -o options.
func (f *flags) parseOptions() error {
	for _, list := range f.options {
		for _, o := range strings.Split(list, ",") {
			switch strings.TrimSpace(o) {
			case "allow_other":
				f.allowOther = true
			case "ro", "default_permissions", "":
				// always on
			default:
				return usagef("-o: unknown mount option %q (known: allow_other, ro, default_permissions)", o)
			}
		}
	}
	return nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	c := &command{stdout: stdout, stderr: stderr, signals: sigs, devFuse: "/dev/fuse"}
	return c.run(ctx, args)
}

// command is one run of ocimount, with what it needs from the outside world.
type command struct {
	stdout, stderr io.Writer
	signals        <-chan os.Signal
	devFuse        string // the FUSE device, checked before mounting
}

// readyLine is the one line ocimount prints once the mount is ready.
func readyLine(image, mnt string, entries int) string {
	return fmt.Sprintf("ocimount: %s mounted on %s (%d entries)", image, mnt, entries)
}

func (c *command) run(ctx context.Context, args []string) error {
	var f flags
	fs := pflag.NewFlagSet("ocimount", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.SortFlags = false
	f.register(fs)
	fs.Usage = func() {}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			fmt.Fprintf(c.stdout, "%s%s", usageText, fs.FlagUsages())
			return err
		}
		return cli.UsageError{Err: err}
	}
	if err := f.parseOptions(); err != nil {
		return err
	}
	args = fs.Args()
	if f.unmount {
		if len(args) != 1 {
			return usagef("-u: want MOUNTPOINT")
		}
		return unmount(args[0])
	}
	if len(args) != 2 {
		return usagef("want IMAGE MOUNTPOINT")
	}
	if f.daemon && f.debug {
		return usagef("--debug logs on stderr: it cannot be used with --daemon")
	}
	image, mnt := args[0], args[1]
	if fd := os.Getenv(readyEnv); fd != "" {
		return c.serveDaemon(ctx, &f, image, mnt, fd)
	}
	if err := c.check(mnt); err != nil {
		return err
	}
	if f.daemon {
		return c.startDaemon(ctx, &f, image, mnt)
	}
	return c.mount(ctx, &f, image, mnt, func(entries int) {
		fmt.Fprintln(c.stderr, readyLine(image, mnt, entries))
	})
}
