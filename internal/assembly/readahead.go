package assembly

import (
	"io"
	"sync"
)

// readahead reads r in a goroutine of its own, chunkSize bytes at a time and up to depth
// chunks ahead of the consumer, so that whatever r does to produce its bytes (reading a file
// and hashing it, inflating) runs on another core than whatever consumes them. The scan of a
// layer is a chain of such stages: read+verify, decompress, parse+spool.
type readahead struct {
	full  chan []byte
	free  chan []byte
	chunk []byte // the chunk being consumed, whole
	cur   []byte // its unread part
	err   error  // from r, once full is drained
	errc  chan error
	done  chan struct{} // closed by Close
	gone  chan struct{} // closed when fill returns
	close sync.Once
}

func newReadahead(r io.Reader, chunkSize, depth int) *readahead {
	ra := &readahead{
		full: make(chan []byte, depth),
		free: make(chan []byte, depth+1),
		errc: make(chan error, 1),
		done: make(chan struct{}),
		gone: make(chan struct{}),
	}
	for range depth + 1 {
		ra.free <- make([]byte, chunkSize)
	}
	go ra.fill(r)
	return ra
}

func (ra *readahead) fill(r io.Reader) {
	defer close(ra.gone)
	defer close(ra.full)
	for {
		var buf []byte
		select {
		case buf = <-ra.free:
		case <-ra.done:
			return
		}
		n, err := io.ReadFull(r, buf[:cap(buf)])
		if n > 0 {
			select {
			case ra.full <- buf[:n]:
			case <-ra.done:
				return
			}
		}
		if err == io.ErrUnexpectedEOF {
			err = io.EOF
		}
		if err != nil {
			ra.errc <- err
			return
		}
	}
}

func (ra *readahead) Read(p []byte) (int, error) {
	for len(ra.cur) == 0 {
		if ra.err != nil {
			return 0, ra.err
		}
		buf, ok := <-ra.full
		if !ok {
			ra.err = <-ra.errc
			continue
		}
		ra.chunk, ra.cur = buf, buf
	}
	n := copy(p, ra.cur)
	ra.cur = ra.cur[n:]
	if len(ra.cur) == 0 {
		ra.free <- ra.chunk[:cap(ra.chunk)]
		ra.chunk = nil
	}
	return n, nil
}

// Close stops the goroutine and waits until it no longer uses the reader it was given, so
// that the caller may close that reader next. It does not close it.
func (ra *readahead) Close() error {
	ra.close.Do(func() { close(ra.done) })
	<-ra.gone
	return nil
}
