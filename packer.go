package ocirender

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/ocirender/ocirender/image"
	"github.com/ocirender/ocirender/internal/assembly"
	"github.com/ocirender/ocirender/layer"
)

// A Packer converts an image whose layer blobs arrive one at a time, in any order, as
// downloads finish: each layer is scanned as soon as LayerReady names its file (or, given
// LayerArriving, while its bytes still arrive), while the others are still on their way, and
// the output is written as soon as the last one is in. The output is the same, byte for
// byte, whatever the order of arrival.
//
// Make one with NewPacker, call LayerReady once per layer (from any goroutine), and Close.
// Fail abandons the work; so does a Close before every layer arrived. Either way no output is
// left behind.
type Packer struct {
	im   *Image
	spec Spec
	a    *assembly.Run

	mu      sync.Mutex
	ready   []bool
	gates   []chan struct{} // of layers arriving as streams, closed by LayerReady
	closed  bool
	failErr error

	closeOnce sync.Once
	closeErr  error
	finished  bool // Close has returned (closeErr is its result)
	succeeded bool // the output is complete: a Fail from now on changes nothing

	done chan struct{} // closed when the output is written or the work failed
	err  error         // the outcome, once done is closed
}

// NewPacker starts the conversion of img as spec says. img comes from image.FromManifest,
// whose layer files LayerReady gives, or from image.Open, whose layers are already there
// (LayerReady(i, "")). The Packer takes img over. spec.Open.Ref and Platform do not apply;
// its cache, if any, is written but not read: an image whose layers are all at hand is opened
// faster by OpenImage.
//
// With spec.Format "", nothing is written: Image returns the merged image after Close.
func NewPacker(ctx context.Context, img *image.Image, spec Spec) (*Packer, error) {
	if err := spec.Check(); err != nil {
		img.Close()
		return nil, err
	}
	// Refuse what cannot be a layer before anything is downloaded for it.
	for i, l := range img.Layers {
		if _, _, err := layer.FromMediaType(l.MediaType); err != nil {
			img.Close()
			return nil, fmt.Errorf("%s: layer %d (%s): %w", img.Path, i, l.Digest, err)
		}
	}
	opts := spec.openOptions().assembly()
	p := &Packer{im: &Image{img: img, ls: assembly.NewLayers(img, opts)}, spec: spec, ready: make([]bool, len(img.Layers)),
		gates: make([]chan struct{}, len(img.Layers)), done: make(chan struct{})}
	p.a = assembly.Start(ctx, p.im.ls, opts)
	go func() {
		defer close(p.done)
		p.err = p.run(opts)
	}()
	return p, nil
}

func (p *Packer) run(opts assembly.Options) (err error) {
	defer p.a.Cancel(nil)
	defer func() {
		if err == nil {
			p.mu.Lock()
			p.succeeded = true
			p.mu.Unlock()
		}
	}()
	if p.im.Index, err = p.a.Finish(); err != nil {
		return err
	}
	if err := p.im.ls.Settle(p.im.Index, opts); err != nil {
		return err
	}
	if p.spec.Format == "" {
		return nil
	}
	return p.im.Export(p.a.Context(), p.spec)
}

// LayerReady says that the blob of layer i is complete in the file at path ("" for an image
// opened from a layout: the layout's own blob), and starts its scan unless LayerArriving
// started it already. The blob is checked against its digest as it is scanned; for a layer
// that arrived as a stream, that check was of the stream, and the file, which is read
// afterwards, must hold the same bytes (its size is checked). Every layer of the image must
// be made ready once. After a failure, it returns the failure.
func (p *Packer) LayerReady(i int, path string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.check("LayerReady", i); err != nil {
		return err
	}
	if p.ready[i] {
		return fmt.Errorf("ocirender: LayerReady(%d) twice", i)
	}
	if path != "" {
		if err := p.im.img.SetLayerFile(i, path); err != nil {
			return err
		}
	}
	p.ready[i] = true
	if g := p.gates[i]; g != nil {
		close(g)
		return nil
	}
	p.a.Layer(i, nil, nil)
	return nil
}

// LayerArriving starts the scan of layer i while its blob is still arriving: r yields the
// blob's bytes as they come (blocking for more) and io.EOF at its end. The scan checks them
// against the layer's digest. LayerReady(i, path) must follow once the blob is complete in
// its file; until then the layer is not merged. A download and the scan of its bytes thus
// overlap, instead of one following the other. r must end, or fail, for Close to return.
func (p *Packer) LayerArriving(i int, r io.Reader) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.check("LayerArriving", i); err != nil {
		return err
	}
	if p.ready[i] || p.gates[i] != nil {
		return fmt.Errorf("ocirender: LayerArriving(%d) of a layer already started", i)
	}
	p.gates[i] = make(chan struct{})
	p.a.Layer(i, r, p.gates[i])
	return nil
}

// check refuses a call after Close or a failure, or of a layer the image does not have.
func (p *Packer) check(what string, i int) error {
	switch {
	case p.closed:
		return fmt.Errorf("ocirender: %s(%d) after Close", what, i)
	case i < 0 || i >= len(p.ready):
		return fmt.Errorf("ocirender: %s(%d): the image has %d layers", what, i, len(p.ready))
	case p.failErr != nil:
		return p.failErr
	case p.a.Context().Err() != nil:
		return context.Cause(p.a.Context())
	}
	return nil
}

// Fail abandons the conversion with err (a download that failed, say): scans stop (a scan
// reading a stream stops when the stream ends or fails, or at once if it is an io.Closer),
// nothing is written, and Close returns err. Once the output is complete, or the
// conversion has failed already, Fail changes nothing.
func (p *Packer) Fail(err error) {
	if err == nil {
		err = assembly.ErrFailed
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.succeeded || p.a.Context().Err() != nil {
		// Too late: the output is complete, or the conversion failed already (then Close
		// reports that first failure, not what it caused, such as a download it stopped).
		return
	}
	p.failErr = err
	p.a.Cancel(err)
}

// Close waits until the output is written and returns the first error of the conversion. A
// layer not made ready by then is an error: the conversion is abandoned and nothing written.
// Later calls return the same.
func (p *Packer) Close() error {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closed = true
		if i := slices.Index(p.ready, false); i >= 0 && p.failErr == nil {
			p.a.Cancel(fmt.Errorf("%s: layer %d (%s) %w", p.im.Path(), i, p.im.Layers()[i].Digest, assembly.ErrNeverArrived))
		}
		p.mu.Unlock()
		<-p.done
		p.a.Wait()
		p.mu.Lock()
		err := p.err
		if p.failErr != nil && !p.succeeded {
			// A Fail that came while the output was being finished: run may have failed
			// with the cancellation it caused, or (renamed just before) not at all.
			err = p.failErr
		}
		p.closeErr, p.finished = err, true
		p.mu.Unlock()
		if err != nil || p.spec.Format != "" {
			p.im.Close()
		}
		if err == nil {
			p.a.Event(Event{Kind: Finished, Layer: -1})
		}
	})
	return p.closeErr
}

// Image returns the merged image of a Packer made with spec.Format "", after a Close that
// returned nil; the caller closes it. Otherwise it returns nil.
func (p *Packer) Image() *Image {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.finished || p.closeErr != nil || p.spec.Format != "" {
		return nil
	}
	return p.im
}
