package cli

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/ocirender/ocirender"
)

// Bars draws one status line per layer of a pull on stderr when it is a terminal (nothing
// otherwise): what the layer is doing and how far it got. Lines are redrawn in place at most
// ten times a second. It is safe for concurrent use.
type Bars struct {
	p     *Progress // its terminal test, writer and lock
	names []string
	state []string
	done  []int64
	total []int64
	lines int // lines drawn last time
}

// NewBars returns bars for layers named names (short digests, say), drawing on w unless
// quiet or not a terminal.
func NewBars(w io.Writer, quiet bool, names []string) *Bars {
	n := len(names)
	b := &Bars{p: NewProgress(w, quiet), names: names, state: make([]string, n), done: make([]int64, n), total: make([]int64, n)}
	for i := range b.state {
		b.state[i] = "waiting"
	}
	return b
}

// Set records that layer i is in state (downloading, scanning, done...) with done of total
// bytes, and redraws when it is time to.
func (b *Bars) Set(i int, state string, done, total int64) {
	if !b.p.on || i < 0 || i >= len(b.names) {
		return
	}
	b.p.mu.Lock()
	defer b.p.mu.Unlock()
	b.state[i], b.done[i], b.total[i] = state, done, total
	if now := time.Now(); now.Sub(b.p.last) >= 100*time.Millisecond {
		b.p.last = now
		b.draw()
	}
}

// draw rewrites the lines; the caller holds the lock.
func (b *Bars) draw() {
	var sb strings.Builder
	if b.lines > 0 {
		fmt.Fprintf(&sb, "\x1b[%dA", b.lines)
	}
	for i, name := range b.names {
		pct := ""
		if b.total[i] > 0 {
			pct = fmt.Sprintf(" %3d%%", b.done[i]*100/b.total[i])
		}
		fmt.Fprintf(&sb, "\r\x1b[Klayer %d/%d %s %-11s%s %s of %s\n", i+1, len(b.names), name, b.state[i], pct, MiB(b.done[i]), MiB(b.total[i]))
	}
	b.lines = len(b.names)
	io.WriteString(b.p.w, sb.String())
}

// Println prints a line (a notice) above the bars: the bars are erased first, and drawn again
// below it on the next update. Without a terminal it just prints the line.
func (b *Bars) Println(line string) {
	b.p.mu.Lock()
	defer b.p.mu.Unlock()
	if b.lines > 0 {
		fmt.Fprintf(b.p.w, "\x1b[%dA\r\x1b[J", b.lines)
		b.lines = 0
	}
	fmt.Fprintln(b.p.w, line)
}

// Done draws the final state of every line.
func (b *Bars) Done() {
	if !b.p.on {
		return
	}
	b.p.mu.Lock()
	defer b.p.mu.Unlock()
	b.draw()
}

// Watch returns the callbacks that show a pull on the bars: pull.Remote.Progress for the
// downloads, ocirender.Options.Events for the scans. While a layer downloads, its line shows
// the download (the scan follows it); then the scan.
func (b *Bars) Watch() (download func(i int, done, total int64), events func(ocirender.Event)) {
	var mu sync.Mutex
	fetching := make(map[int]bool)
	download = func(i int, done, total int64) {
		mu.Lock()
		fetching[i] = done < total
		mu.Unlock()
		state := "downloading"
		if done == total {
			state = "downloaded"
		}
		b.Set(i, state, done, total)
	}
	events = func(e ocirender.Event) {
		mu.Lock()
		busy := fetching[e.Layer]
		mu.Unlock()
		switch e.Kind {
		case ocirender.LayerProgress, ocirender.LayerStarted:
			if !busy {
				b.Set(e.Layer, "scanning", e.Done, e.Total)
			}
		case ocirender.LayerScanned:
			if e.Err == nil {
				b.Set(e.Layer, "done", e.Done, e.Total)
			}
		}
	}
	return download, events
}
