package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"
)

// UsageError marks a mistake in the command line: the command exits 2 and points at its
// help.
type UsageError struct{ Err error }

func (u UsageError) Error() string { return u.Err.Error() }
func (u UsageError) Unwrap() error { return u.Err }

// Usagef makes a UsageError.
func Usagef(format string, args ...any) error { return UsageError{fmt.Errorf(format, args...)} }

// OneLine keeps a message on one line: trailing newlines go, inner ones are escaped.
func OneLine(s string) string {
	return strings.NewReplacer("\n", `\n`, "\r", `\r`).Replace(strings.TrimRight(s, "\n"))
}

// Report prints err on stderr as one line, "PROG: message" ("PROG: interrupted" when the
// run was cancelled), followed by hint after a usage error, and returns the exit status: 0
// for no error or --help, 2 for a usage error, the status of an error with an ExitCode
// method (verify and diff), else 1.
func Report(prog, hint string, err error, stderr io.Writer) int {
	if err == nil || errors.Is(err, pflag.ErrHelp) {
		return 0
	}
	code := 1
	var x interface{ ExitCode() int }
	if errors.As(err, &x) {
		code = x.ExitCode()
	}
	if errors.Is(err, context.Canceled) {
		fmt.Fprintf(stderr, "%s: interrupted\n", prog)
		return code
	}
	fmt.Fprintf(stderr, "%s: %s\n", prog, OneLine(err.Error()))
	var u UsageError
	if errors.As(err, &u) {
		fmt.Fprintln(stderr, hint)
		return 2
	}
	return code
}
