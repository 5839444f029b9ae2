package layer

import (
	"io"
	"sync"
)

// Compressed input for parallel gzip decoding (see pargzip.go). One
// goroutine reads the source into chunks of equal size, kept in a singly
// linked list; every decoder (the sequential one and each speculative job)
// reads through its own cursor. Nothing keeps the head of the list, so a
// chunk is garbage once no cursor, job or result points at it or before it.
// The reader stays at most a little ahead of the furthest chunk anyone has
// asked for, which bounds the memory.

// An inputChunk is chunkSize bytes of the compressed stream (the last one
// may be shorter).
type inputChunk struct {
	index int
	data  []byte
	err   error         // after data: io.EOF or the source's error; nil when more follows
	done  chan struct{} // closed once data and err are final
	next  *inputChunk   // guarded by chunkInput.mu
}

type chunkInput struct {
	src       io.Reader
	chunkSize int
	ahead     int // chunks read beyond the furthest one asked for

	mu      sync.Mutex
	cond    sync.Cond
	wanted  int  // furthest chunk index asked for
	closed  bool // Close was called: the reader stops
	ended   bool // the source has ended
	last    int  // index of the last chunk, once ended
	endErr  error
	quit    chan struct{}
	stopped chan struct{} // closed when the reading goroutine has returned
	free    chan []byte   // chunk buffers to reuse
}

// newChunkInput starts reading src and returns the input and its first chunk.
func newChunkInput(src io.Reader, chunkSize, ahead int) (*chunkInput, *inputChunk) {
	in := &chunkInput{src: src, chunkSize: chunkSize, ahead: ahead,
		quit: make(chan struct{}), stopped: make(chan struct{}), free: make(chan []byte, 4)}
	in.cond.L = &in.mu
	first := &inputChunk{done: make(chan struct{})}
	go in.read(first)
	return in, first
}

// read fills the chunks in order, waiting while it is far enough ahead.
func (in *chunkInput) read(c *inputChunk) {
	defer close(in.stopped)
	for {
		in.mu.Lock()
		for !in.closed && c.index > in.wanted+in.ahead {
			in.cond.Wait()
		}
		closed := in.closed
		in.mu.Unlock()
		if closed {
			return
		}
		var buf []byte
		select {
		case buf = <-in.free:
		default:
			buf = make([]byte, in.chunkSize)
		}
		n, err := 0, error(nil)
		for empty := 0; n < len(buf) && err == nil; {
			var m int
			m, err = in.src.Read(buf[n:])
			n += m
			if m == 0 && err == nil {
				if empty++; empty == 100 {
					err = io.ErrNoProgress
				}
			}
		}
		c.data = buf[:n]
		c.err = err
		in.mu.Lock()
		if err != nil {
			in.ended, in.last, in.endErr = true, c.index, err
			for d := c.next; d != nil; d = d.next { // chunks past the end: empty
				d.err = err
				close(d.done)
			}
		}
		next := in.successorLocked(c)
		in.mu.Unlock()
		close(c.done)
		if err != nil {
			return
		}
		c = next
	}
}

// successor returns the chunk after c, creating it if need be.
func (in *chunkInput) successor(c *inputChunk) *inputChunk {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.successorLocked(c)
}

func (in *chunkInput) successorLocked(c *inputChunk) *inputChunk {
	if c.next == nil {
		c.next = &inputChunk{index: c.index + 1, done: make(chan struct{})}
		if in.ended && c.index >= in.last {
			c.next.err = in.endErr
			close(c.next.done)
		}
	}
	return c.next
}

// recycle gives back the buffer of a chunk that no one will read again.
func (in *chunkInput) recycle(c *inputChunk) {
	<-c.done
	if cap(c.data) == in.chunkSize {
		select {
		case in.free <- c.data[:cap(c.data)]:
		default:
		}
	}
	c.data = nil
}

// want tells the reader that chunk i is needed.
func (in *chunkInput) want(i int) {
	in.mu.Lock()
	if i > in.wanted {
		in.wanted = i
		in.cond.Broadcast()
	}
	in.mu.Unlock()
}

// pastEnd reports whether the source is known to end before chunk i.
func (in *chunkInput) pastEnd(i int) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.ended && i > in.last
}

// wait blocks until c is filled; false means the input was closed.
func (in *chunkInput) wait(c *inputChunk) bool {
	select {
	case <-c.done:
		return true
	default:
	}
	in.want(c.index)
	select {
	case <-c.done:
		return true
	case <-in.quit:
		return false
	}
}

// close stops the reader and waits for its Read in progress, if any, so
// that the source is not touched after Close returns.
func (in *chunkInput) close() {
	in.mu.Lock()
	if !in.closed {
		in.closed = true
		close(in.quit)
		in.cond.Broadcast()
	}
	in.mu.Unlock()
	<-in.stopped
}

// A chunkCursor reads the stream from some offset on.
type chunkCursor struct {
	in  *chunkInput
	c   *inputChunk
	pos int // in c.data
}

// seekCursor returns a cursor at stream offset off, walking forward from
// chunk c, which must start at or before off.
func (in *chunkInput) seekCursor(c *inputChunk, off int64) *chunkCursor {
	for int64(c.index+1)*int64(in.chunkSize) <= off {
		c = in.successor(c)
	}
	return &chunkCursor{in: in, c: c, pos: int(off - int64(c.index)*int64(in.chunkSize))}
}

func (r *chunkCursor) Read(p []byte) (int, error) {
	for {
		if !r.in.wait(r.c) {
			return 0, errClosed
		}
		if r.pos < len(r.c.data) {
			n := copy(p, r.c.data[r.pos:])
			r.pos += n
			return n, nil
		}
		if r.c.err != nil {
			return 0, r.c.err
		}
		r.pos -= len(r.c.data)
		r.c = r.in.successor(r.c)
	}
}
