package tests

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ocirender/ocirender/internal/imagetest"
)

// TestInterruptLeavesNothing sends SIGINT to exports in flight, for every output format: the
// command must fail with one line on stderr and leave neither OUT nor a temporary file next
// to it. The image is large enough (a 3000-file, ~150 MB gzip layer) that the signal arrives
// while layers are still being read, or while the output is being written.
func TestInterruptLeavesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode: writes a 150 MB layer")
	}
	bin := ocirenderBin(t)
	work := t.TempDir()
	image := filepath.Join(work, "big")
	rng := rand.New(rand.NewPCG(1, 2))
	var entries []imagetest.Entry
	words := []string{"alpha ", "beta ", "gamma ", "delta ", "\n", "epsilon ", "0123456789 "}
	for i := range 3000 {
		var b strings.Builder
		for b.Len() < 50000 {
			b.WriteString(words[rng.IntN(len(words))])
		}
		entries = append(entries, imagetest.Entry{Name: fmt.Sprintf("d%02d/f%04d", i%50, i), Body: b.String()})
	}
	writeImage(t, image, "big", imagetest.GzipBlob(e2e.Layer(entries...)))

	for _, format := range []string{"tar", "dir", "squashfs"} {
		// How long does the whole export take? Signal at a quarter of that (in the layer scan)
		// and at three quarters (in the writing). An export that still finishes first is
		// retried with half the delay.
		start := time.Now()
		mustRun(t, testContext(t), bin, "export", "-q", "--format", format, "-o", filepath.Join(t.TempDir(), "full"), image)
		took := time.Since(start)
		for _, frac := range []float64{0.25, 0.75} {
			t.Run(fmt.Sprintf("%s/%.0f%%", format, frac*100), func(t *testing.T) {
				interrupt(t, bin, format, image, time.Duration(float64(took)*frac))
			})
		}
	}
}

func interrupt(t *testing.T, bin, format, image string, delay time.Duration) {
	for ; ; delay /= 2 {
		outDir := t.TempDir()
		out := filepath.Join(outDir, "out")
		cmd := exec.Command(bin, "export", "-q", "--format", format, "-o", out, "--tmp-dir", outDir, image)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(delay)
		cmd.Process.Signal(syscall.SIGINT)
		err := cmd.Wait()
		if err == nil {
			if delay < time.Millisecond {
				t.Fatalf("export finished before every signal")
			}
			continue
		}
		if code := cmd.ProcessState.ExitCode(); code != 1 {
			t.Errorf("interrupted export: exit %d (%v), want 1; stderr %q", code, err, stderr.String())
		}
		msg := strings.TrimSpace(stderr.String())
		if strings.Count(msg, "\n") != 0 || !strings.Contains(msg, "interrupted") {
			t.Errorf("stderr = %q, want one line saying the export was interrupted", msg)
		}
		names, _ := os.ReadDir(outDir)
		for _, n := range names {
			t.Errorf("left behind after SIGINT: %s", n.Name())
		}
		return
	}
}
