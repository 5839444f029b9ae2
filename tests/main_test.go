package tests

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ocirender/ocirender/verify"
)

var (
	binDir   string
	buildErr error
)

// TestMain builds the binaries once for every test.
func TestMain(m *testing.M) {
	// umoci creates missing parents with 0777 &^ umask; the design says
	// 0755, so both sides run with 022.
	syscall.Umask(0o022)
	dir, err := os.MkdirTemp("", "ocirender-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	buildErr = buildBinaries(dir)
	// Every command shares one index cache for the run: the first command on an image
	// scans it (and spools layers for exports), later ones read through the cached maps,
	// so the oracle tests judge both paths.
	cache, err := os.MkdirTemp("", "ocirender-e2e-cache-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("XDG_CACHE_HOME", cache)
	code := m.Run()
	os.RemoveAll(dir)
	os.RemoveAll(cache)
	os.Exit(code)
}

// buildBinaries builds every command of the module into dir, before TestMain moves
// XDG_CACHE_HOME (where the go command keeps its build cache by default).
func buildBinaries(dir string) error {
	for _, c := range []string{"ocirender", "ocimount"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, c), "./cmd/"+c)
		cmd.Dir = ".." // the module root
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("go build ./cmd/%s: %v\n%s", c, err, out)
		}
	}
	return nil
}

// ocirenderBin returns the built binary or fails the test with the build
// output.
func ocirenderBin(t testing.TB) string {
	t.Helper()
	if buildErr != nil {
		t.Fatalf("cannot run the end-to-end test: %v", buildErr)
	}
	return filepath.Join(binDir, "ocirender")
}

func requireRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("skipped: needs root (%s)", why)
	}
}

func requireTools(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("skipped: %s is not installed", tool)
		}
	}
}

// requireGNUTar skips unless `tar` is GNU tar, whose extraction judges our tars.
func requireGNUTar(t testing.TB) {
	t.Helper()
	requireTools(t, "tar")
	out, err := exec.Command("tar", "--version").Output()
	if err != nil || !bytes.Contains(out, []byte("GNU tar")) {
		t.Skip("skipped: tar is not GNU tar")
	}
}

// result is how a command ended.
type result struct {
	stdout, stderr []byte
	code           int // exit status; -1 if it did not exit normally
}

func (r result) String() string {
	return fmt.Sprintf("exit %d, stderr:\n%s", r.code, r.stderr)
}

// run runs a command to completion; an error means it could not be run
// at all (not found, killed by the deadline).
func run(ctx context.Context, name string, args ...string) (result, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.Bytes(), stderr: stderr.Bytes()}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit) && exit.Exited():
		r.code = exit.ExitCode()
		err = nil
	default:
		r.code = -1
		if ctx.Err() != nil {
			err = fmt.Errorf("%s: %w", name, ctx.Err())
		}
	}
	return r, err
}

// mustRun runs a command that has to succeed.
func mustRun(t *testing.T, ctx context.Context, name string, args ...string) result {
	t.Helper()
	r, err := run(ctx, name, args...)
	if err != nil || r.code != 0 {
		t.Fatalf("%s %s: %v %v", name, strings.Join(args, " "), err, r)
	}
	return r
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	if d, ok := t.Deadline(); ok {
		ctx, cancel = context.WithDeadline(context.Background(), d.Add(-10*time.Second))
	}
	t.Cleanup(cancel)
	return ctx
}

func scan(t *testing.T, dir string) []verify.Entry {
	t.Helper()
	entries, err := verify.ScanDir(dir)
	if err != nil {
		t.Fatalf("ScanDir: %v", err)
	}
	return entries
}

// reportDiffs fails the test with the first differences, if any.
func reportDiffs(t *testing.T, what string, diffs []verify.Difference) {
	t.Helper()
	if len(diffs) == 0 {
		return
	}
	const shown = 40
	var b strings.Builder
	for i, d := range diffs {
		if i == shown {
			fmt.Fprintf(&b, "... and %d more\n", len(diffs)-shown)
			break
		}
		b.WriteString(d.String())
		b.WriteByte('\n')
	}
	t.Errorf("%s differs from the oracle in %d places (want = oracle, got = ours):\n%s", what, len(diffs), b.String())
}
