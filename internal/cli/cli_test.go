package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocirender/ocirender"
)

func TestPullTarget(t *testing.T) {
	dir := t.TempDir()
	existing := filepath.Join(dir, "debian.tar")
	os.WriteFile(existing, nil, 0o644)
	t.Chdir(dir)
	for _, tc := range []struct {
		arg             string
		ref             string
		explicit, isRef bool
	}{
		{"docker://alpine:3", "alpine:3", true, true},
		{"docker://debian.tar", "debian.tar", true, true}, // explicit wins over a file
		{"debian.tar", "", false, false},                  // the file
		{existing, "", false, false},
		{"registry.example:5000/team/app:v1", "registry.example:5000/team/app:v1", false, true},
		{"alpine@sha256:" + strings.Repeat("a", 64), "alpine@sha256:" + strings.Repeat("a", 64), false, true},
		{filepath.Join(dir, "missing"), "", false, false}, // an absolute path is no reference
		{"./missing", "", false, false},
		{"missing.tar", "", false, false},
		{"Bad::Ref", "", false, false},
	} {
		ref, explicit, isRef := PullTarget(tc.arg)
		if ref != tc.ref || explicit != tc.explicit || isRef != tc.isRef {
			t.Errorf("PullTarget(%q) = %q, %v, %v; want %q, %v, %v", tc.arg, ref, explicit, isRef, tc.ref, tc.explicit, tc.isRef)
		}
	}
}

func TestBars(t *testing.T) {
	var buf bytes.Buffer
	b := NewBars(&buf, false, []string{"aaaa", "bbbb"})
	b.Set(0, "downloading", 1, 2)
	if buf.Len() != 0 {
		t.Fatalf("drew on a writer that is no terminal: %q", buf.String())
	}
	b.p.on = true // as on a terminal
	download, events := b.Watch()
	download(1, 512<<10, 1<<20)
	events(ocirender.Event{Kind: ocirender.LayerProgress, Layer: 1, Done: 10, Total: 1 << 20}) // hidden by the download
	download(0, 1<<20, 1<<20)
	events(ocirender.Event{Kind: ocirender.LayerScanned, Layer: 0, Done: 1 << 20, Total: 1 << 20})
	b.Done()
	out := buf.String()
	last := out[strings.LastIndex(out, "\x1b[2A"):]
	for _, want := range []string{"layer 1/2 aaaa done", "100%", "layer 2/2 bbbb downloading  50% 0.5 MiB of 1.0 MiB"} {
		if !strings.Contains(last, want) {
			t.Errorf("final drawing lacks %q:\n%q", want, last)
		}
	}
	if strings.Count(last, "\n") != 2 {
		t.Errorf("final drawing is not two lines: %q", last)
	}
}

// TestBarsPrintln: a notice goes above the bars, which are erased first and drawn again
// below it, so the notice is not overwritten.
func TestBarsPrintln(t *testing.T) {
	var buf bytes.Buffer
	b := NewBars(&buf, false, []string{"aaaa", "bbbb"})
	b.Println("plain")
	if buf.String() != "plain\n" {
		t.Errorf("without a terminal: %q", buf.String())
	}
	buf.Reset()
	b.p.on = true
	b.Done() // two lines drawn
	b.Println("notice")
	b.Done()
	out := buf.String()
	i := strings.Index(out, "\x1b[2A\r\x1b[Jnotice\n")
	if i < 0 || strings.Contains(out[i:], "\x1b[3A") || !strings.Contains(out[i:], "layer 2/2 bbbb") {
		t.Errorf("notice among the bars: %q", out)
	}
}
