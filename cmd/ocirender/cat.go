package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"
)

type catFlags struct {
	imageFlags
	noFollow bool
}

var catVerb = &verb{
	name:  "cat",
	args:  "[flags] IMAGE PATH",
	short: "write one file of the merged image to stdout, reading only what it needs of the layers",
	setup: func(fs *pflag.FlagSet) runFunc {
		f := &catFlags{}
		fs.BoolVar(&f.noFollow, "no-follow", false, "fail if PATH itself is a symlink instead of following it")
		f.register(fs)
		return f.run
	},
}

func (f *catFlags) run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) != 2 {
		return usagef("cat: want IMAGE PATH")
	}
	img, err := f.open(ctx, args[0], randomContent, "", stderr)
	if err != nil {
		return err
	}
	defer img.Close()
	src, _, err := img.OpenFile(args[1], f.noFollow)
	if err != nil {
		if f.noFollow && strings.Contains(err.Error(), "is a symlink") {
			err = fmt.Errorf("%w (--no-follow)", err)
		}
		return err
	}
	buf := make([]byte, 1<<20)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := stdout.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %s: %w", args[0], args[1], err)
		}
	}
}
