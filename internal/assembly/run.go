package assembly

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/ocirender/ocirender/image"
	"github.com/ocirender/ocirender/index"
	"github.com/ocirender/ocirender/overlay"
)

// Run scans layers as they are started, any number at once up to the workers bound, and
// merges them in layer order as their scans end: Open starts them all at once, a Packer one
// by one as they arrive.
type Run struct {
	ls      *Layers
	opts    Options
	ctx     context.Context
	cancel  context.CancelCauseFunc
	results []chan scanResult
	sem     chan struct{}
	wg      sync.WaitGroup

	total, done atomic.Int64 // bytes of every layer's blob, and read so far
}

// Start begins a run over the layers ls: nothing is scanned until Layer starts a layer.
func Start(ctx context.Context, ls *Layers, opts Options) *Run {
	a := &Run{ls: ls, opts: opts, results: make([]chan scanResult, len(ls.img.Layers))}
	a.ctx, a.cancel = context.WithCancelCause(ctx)
	for i := range a.results {
		a.results[i] = make(chan scanResult, 1)
	}
	for _, l := range ls.img.Layers {
		a.total.Add(l.Size)
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	a.sem = make(chan struct{}, workers)
	return a
}

// Layer scans layer i in the background, from its blob file, or with stream set from stream
// while the blob arrives; then the result waits for gate, closed once the blob's file is
// complete and known. Each layer is started once.
//
// A stream that is an io.Closer is closed when the scan ends, and at once if the assembly is
// cancelled meanwhile, so that a scan waiting for bytes that will not come ends too. A scan
// of a stream takes no worker slot: it mostly waits for the network, and the number of
// downloads at once bounds it.
func (a *Run) Layer(i int, stream io.Reader, gate <-chan struct{}) {
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		if c, ok := stream.(io.Closer); ok {
			defer c.Close()
			stop := context.AfterFunc(a.ctx, func() { c.Close() })
			defer stop()
		}
		if stream == nil {
			select {
			case a.sem <- struct{}{}:
			case <-a.ctx.Done():
				a.results[i] <- scanResult{err: context.Cause(a.ctx)}
				return
			}
		}
		a.Event(Event{Kind: LayerStarted, Layer: i, Total: a.ls.img.Layers[i].Size})
		var mine int64
		progress := func(k int64) {
			mine += k
			a.Event(Event{Kind: LayerProgress, Layer: i, Done: mine, Total: a.ls.img.Layers[i].Size})
			a.Event(Event{Kind: Scanning, Layer: -1, Done: a.done.Add(k), Total: a.total.Load()})
		}
		r := a.ls.scan(a.ctx, i, a.opts, progress, stream)
		if stream == nil {
			<-a.sem
		}
		if r.err == nil && gate != nil {
			select {
			case <-gate:
				r.err = a.ls.adoptBlob(i, a.opts)
			case <-a.ctx.Done():
				r.err = context.Cause(a.ctx)
			}
		}
		a.Event(Event{Kind: LayerScanned, Layer: i, Done: mine, Total: a.ls.img.Layers[i].Size, Err: r.err})
		a.results[i] <- r
	}()
}

// Event reports e to the run's Options.Events.
func (a *Run) Event(e Event) {
	if a.opts.Events != nil {
		a.opts.Events(e)
	}
}

// Finish waits for every layer's scan, in layer order, merges them into the index and waits
// for the scans still running. It fails as soon as one scan fails or the context ends.
func (a *Run) Finish() (*index.Index, error) {
	defer a.wg.Wait()
	img := a.ls.img
	m := overlay.New(overlay.Options{})
	for i := range a.results {
		var r scanResult
		select {
		case r = <-a.results[i]:
		case <-a.ctx.Done():
			r.err = context.Cause(a.ctx)
		}
		if r.err != nil && a.ctx.Err() != nil {
			// Cancelled (a failed download, a layer that never came, the caller): that is
			// the failure, not a scan it cut short, whichever of the two the select saw.
			r.err = context.Cause(a.ctx)
		}
		err := r.err
		if err == nil {
			err = m.Apply(r.changes)
		}
		if err != nil {
			a.cancel(err)
			var de *image.DigestError
			if errors.As(err, &de) {
				return nil, de // it names the image and the layer itself
			}
			if errors.Is(err, ErrNeverArrived) || errors.Is(err, ErrFailed) {
				return nil, context.Cause(a.ctx) // the layer that is missing, not one that was cut short
			}
			return nil, fmt.Errorf("%s: layer %d (%s): %w", img.Path, i, img.Layers[i].Digest, err)
		}
	}
	ix, err := m.Index()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", img.Path, err)
	}
	return ix, nil
}

// Cancel stops the run with err as its cause (nil: context.Canceled): scans end, and
// Finish fails.
func (a *Run) Cancel(err error) { a.cancel(err) }

// Context is the run's context: done once the run is cancelled or its parent is.
func (a *Run) Context() context.Context { return a.ctx }

// Wait waits for every scan started to end.
func (a *Run) Wait() { a.wg.Wait() }

type scanResult struct {
	changes []overlay.Change
	err     error
}

func largestFirst(ls []image.Layer) []int {
	order := make([]int, len(ls))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(ls[b].Size, ls[a].Size) })
	return order
}

// Causes of a cancelled run that Finish does not report as such: it reports the error they
// came with (the cause of the cancellation) instead of a scan they cut short.
var (
	ErrNeverArrived = errors.New("never arrived")
	ErrFailed       = errors.New("packer failed")
)
