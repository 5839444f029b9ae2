package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/ocirender/ocirender"
	"github.com/ocirender/ocirender/fsview"
	"github.com/ocirender/ocirender/internal/cli"
	"github.com/ocirender/ocirender/pull"
)

// check fails, before anything is read, when the mount cannot work.
func (c *command) check(mnt string) error {
	if err := checkMountpoint(mnt); err != nil {
		return err
	}
	return checkDevice(c.devFuse)
}

// checkMountpoint fails unless mnt is an empty directory that no FUSE file system is
// mounted on (the kernel may answer for a dead one from its caches, so ask the mount table).
func checkMountpoint(mnt string) error {
	if path, err := canonical(mnt); err == nil {
		if m, err := findMount(path); err == nil && m != nil && strings.HasPrefix(m.FSType, "fuse") {
			if m.FSType == "fuse.ocimount" {
				return fmt.Errorf("%s is already mounted (%s): 'ocimount -u %s' unmounts it", mnt, m.Source, mnt)
			}
			return fmt.Errorf("%s is already a %s mount", mnt, m.FSType)
		}
	}
	fi, err := os.Stat(mnt)
	switch {
	case errors.Is(err, syscall.ENOTCONN):
		return staleError(mnt)
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("mountpoint %s does not exist", mnt)
	case err != nil:
		return fmt.Errorf("mountpoint: %w", err)
	case !fi.IsDir():
		return fmt.Errorf("mountpoint %s is not a directory", mnt)
	}
	d, err := os.Open(mnt)
	if errors.Is(err, syscall.ENOTCONN) {
		return staleError(mnt)
	}
	if err != nil {
		return fmt.Errorf("mountpoint: %w", err)
	}
	defer d.Close()
	names, err := d.Readdirnames(1)
	if err != nil && err != io.EOF {
		return fmt.Errorf("mountpoint: %w", err)
	}
	if len(names) > 0 {
		return fmt.Errorf("mountpoint %s is not empty", mnt)
	}
	return nil
}

func staleError(mnt string) error {
	return fmt.Errorf("%s: %w (a FUSE mount whose process died? 'ocimount -u %s' removes it)", mnt, syscall.ENOTCONN, mnt)
}

// checkDevice fails unless dev is a character device, as /dev/fuse must be.
func checkDevice(dev string) error {
	fi, err := os.Stat(dev)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s is missing: load the fuse module (modprobe fuse), or give the container the device", dev)
	}
	if err != nil {
		return err
	}
	if fi.Mode()&os.ModeCharDevice == 0 {
		return fmt.Errorf("%s is not a character device", dev)
	}
	return nil
}

// open opens the image with its layer contents readable at random, through the index cache
// unless --no-cache.
func (c *command) open(ctx context.Context, f *flags, image string) (*ocirender.Image, error) {
	p := cli.NewProgress(c.stderr, f.quiet)
	defer p.Done()
	opts := ocirender.Options{
		Ref: f.ref, Platform: f.platform, Content: true,
		Events: p.Events(),
		Notice: func(msg string) {
			p.Done()
			fmt.Fprintf(c.stderr, "ocimount: notice: %s\n", oneLine(msg))
		},
	}
	opts.CacheDir = cli.CacheDir(f.cacheDir, f.noCache, opts.Notice)
	ref, explicit, isRef := cli.PullTarget(image)
	if !isRef {
		return ocirender.Open(ctx, image, opts)
	}
	img, err := c.pull(ctx, f, ref, opts)
	if err != nil && !explicit {
		return nil, fmt.Errorf("%s: no such file, and as a registry reference: %w", image, err)
	}
	return img, err
}

// pull fetches a registry reference into the blob cache (a temporary directory with
// --no-cache), scanning each layer as it arrives, and returns the merged image.
func (c *command) pull(ctx context.Context, f *flags, ref string, opts ocirender.Options) (*ocirender.Image, error) {
	if f.ref != "" {
		return nil, usagef("--ref picks an image of a layout; a registry reference names one already")
	}
	popts := pull.Options{Platform: f.platform, Insecure: f.insecure, Jobs: f.jobs, BlobDir: ocirender.BlobDir(opts.CacheDir)}
	r, err := pull.Resolve(ctx, ref, popts)
	if err != nil {
		return nil, err
	}
	// The image keeps its blob files open: a temporary blob directory can go once it is open.
	defer r.Close()
	names := make([]string, len(r.Layers))
	for i, l := range r.Layers {
		names[i] = l.Digest.Hex[:12]
	}
	bars := cli.NewBars(c.stderr, f.quiet, names)
	r.Progress, opts.Events = bars.Watch()
	opts.Notice = func(msg string) { bars.Println("ocimount: notice: " + oneLine(msg)) }
	img, err := ocirender.PullRemote(ctx, r, ocirender.Spec{Open: opts})
	bars.Done()
	return img, err
}

// mount opens the image, mounts it on mnt, calls ready with the number of entries once the
// kernel has the mount, and serves it until it is unmounted.
func (c *command) mount(ctx context.Context, f *flags, image, mnt string, ready func(entries int)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// A signal while the layers are read cancels the scan.
	opened := make(chan struct{})
	go func() {
		select {
		case <-c.signals:
			cancel()
		case <-opened:
		}
	}()
	img, err := c.open(ctx, f, image)
	close(opened)
	if err != nil {
		return err
	}
	defer img.Close()
	if err := ctx.Err(); err != nil {
		return err
	}
	view := fsview.New(img.Index, img.Content(), fsview.Options{
		Name: image, AllowOther: f.allowOther, Debug: f.debug, Logf: c.readErrorLog(),
	})
	server, err := view.Mount(mnt)
	if err != nil {
		return fmt.Errorf("mount %s on %s: %w", image, mnt, err)
	}
	ready(img.Index.Len())
	return c.serve(server, mnt)
}

// serve waits until the mount goes away. The first SIGINT or SIGTERM unmounts it; if that
// fails (the mount is busy) the next one detaches it (a lazy unmount) and gives up serving.
func (c *command) serve(server *fuse.Server, mnt string) error {
	done := make(chan struct{})
	go func() {
		server.Wait()
		close(done)
	}()
	unmounted := make(chan error, 1)
	signals := 0
	for {
		select {
		case <-done:
			return nil
		case err := <-unmounted:
			if err != nil {
				fmt.Fprintf(c.stderr, "ocimount: cannot unmount %s: %s; signal again to detach it\n", mnt, oneLine(err.Error()))
			}
		case <-c.signals:
			signals++
			if signals == 1 {
				go func() { unmounted <- server.Unmount() }()
				continue
			}
			if err := detach(mnt); err != nil {
				return fmt.Errorf("detach %s: %w", mnt, err)
			}
			return fmt.Errorf("%s was busy: detached it (lazy unmount); open files there now fail", mnt)
		}
	}
}

// readErrorLog returns the Logf of the view: read errors go to stderr, the first hundred of
// them (a damaged layer can fail every read).
func (c *command) readErrorLog() func(format string, args ...any) {
	var mu sync.Mutex
	n := 0
	return func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		n++
		switch {
		case n < 100:
			fmt.Fprintf(c.stderr, "ocimount: %s\n", oneLine(fmt.Sprintf(format, args...)))
		case n == 100:
			fmt.Fprintln(c.stderr, "ocimount: more read errors; not showing them")
		}
	}
}
