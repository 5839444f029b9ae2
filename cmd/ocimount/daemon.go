package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/ocirender/ocirender/internal/cli"
)

// readyEnv names the environment variable that tells a background ocimount which file
// descriptor to report on: "ready N" (N entries) once the mount is ready, or "error MSG".
const readyEnv = "OCIMOUNT_READY_FD"

// startDaemon runs ocimount again as a detached process (its own session, stdio on
// /dev/null, working directory /) and waits until that process reports the mount ready,
// or its error.
func (c *command) startDaemon(ctx context.Context, f *flags, image, mnt string) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("--daemon: %w", err)
	}
	args, err := daemonArgs(f, image, mnt)
	if err != nil {
		return err
	}
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer devnull.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), readyEnv+"=3")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, devnull, devnull
	cmd.ExtraFiles = []*os.File{w}
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	w.Close()
	if err != nil {
		return fmt.Errorf("--daemon: %w", err)
	}
	reply := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(r, 64<<10))
		reply <- string(b)
	}()
	var msg string
	select {
	case msg = <-reply:
	case <-c.signals:
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		return context.Canceled
	case <-ctx.Done():
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		return ctx.Err()
	}
	if n, ok := strings.CutPrefix(msg, "ready "); ok {
		entries, _ := strconv.Atoi(strings.TrimSpace(n))
		fmt.Fprintln(c.stderr, readyLine(image, mnt, entries)+fmt.Sprintf(", served by process %d", cmd.Process.Pid))
		return cmd.Process.Release()
	}
	werr := cmd.Wait()
	if e, ok := strings.CutPrefix(msg, "error "); ok {
		return errors.New(e)
	}
	return fmt.Errorf("the background ocimount ended before the mount was ready (%v)", werr)
}

// daemonArgs is the command line of the background process: the same flags, paths made
// absolute (it runs in /), a registry reference as docker://REF, no --daemon (readyEnv says
// it is the background process).
func daemonArgs(f *flags, image, mnt string) ([]string, error) {
	var args []string
	if f.ref != "" {
		args = append(args, "--ref", f.ref)
	}
	if f.platform != "" {
		args = append(args, "--platform", f.platform)
	}
	if f.cacheDir != "" {
		dir, err := filepath.Abs(f.cacheDir)
		if err != nil {
			return nil, err
		}
		args = append(args, "--cache-dir", dir)
	}
	if f.noCache {
		args = append(args, "--no-cache")
	}
	if f.allowOther {
		args = append(args, "-o", "allow_other")
	}
	if f.insecure {
		args = append(args, "--insecure")
	}
	if f.jobs != 0 {
		args = append(args, "--jobs", strconv.Itoa(f.jobs))
	}
	args = append(args, "-q", "--")
	if ref, _, isRef := cli.PullTarget(image); isRef {
		// A registry reference stays one, whatever files the background process finds in /.
		args = append(args, "docker://"+ref)
	} else {
		abs, err := filepath.Abs(image)
		if err != nil {
			return nil, err
		}
		args = append(args, abs)
	}
	abs, err := filepath.Abs(mnt)
	if err != nil {
		return nil, err
	}
	return append(args, abs), nil
}

// serveDaemon is the background process: it mounts and serves like the foreground command
// and tells the process that started it how the mount went, on file descriptor fd.
func (c *command) serveDaemon(ctx context.Context, f *flags, image, mnt, fd string) error {
	os.Unsetenv(readyEnv)
	n, err := strconv.Atoi(fd)
	if err != nil {
		return fmt.Errorf("%s=%q: not a file descriptor", readyEnv, fd)
	}
	pipe := os.NewFile(uintptr(n), "ready")
	reported := false
	err = c.check(mnt)
	if err == nil {
		err = c.mount(ctx, f, image, mnt, func(entries int) {
			fmt.Fprintf(pipe, "ready %d\n", entries)
			pipe.Close()
			reported = true
		})
	}
	if !reported {
		if err == nil {
			err = errors.New("ended before the mount was ready")
		}
		if errors.Is(err, context.Canceled) {
			err = errors.New("interrupted")
		}
		fmt.Fprintf(pipe, "error %s", oneLine(err.Error()))
		pipe.Close()
	}
	return err
}
