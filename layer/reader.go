package layer

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
)

// SpanSize is the unit the ReadCache keeps decoded bytes in: large enough that a sequential
// reader of small pieces (FUSE reads 128 KiB at most) decodes each byte once, small enough
// that a random 4 KiB read does not pin much.
const SpanSize = 128 << 10

// DefaultCacheBudget is the decoded bytes a ReadCache keeps when NewReadCache is given zero.
const DefaultCacheBudget = 64 << 20

// defaultIdleDecoders bounds the live decoders a ReadCache keeps parked between reads.
const defaultIdleDecoders = 8

// ReadCache holds what Readers share to make repeated and sequential reads cheap: a bounded
// LRU of decoded spans and a pool of live decoders parked where their last read stopped, so
// that a reader going on from there continues instead of resuming at a checkpoint. It is
// safe for concurrent use.
type ReadCache struct {
	mu     sync.Mutex
	budget int64
	used   int64
	spans  map[spanKey]*span
	head   span // sentinel of the LRU ring: head.next is the most recent
	idle   []*liveDecoder
	nIdle  int

	Hits, Misses, Resumes atomic.Int64 // statistics
}

type spanKey struct {
	reader uint64
	index  int64 // offset / SpanSize
}

type span struct {
	key        spanKey
	data       []byte
	prev, next *span
}

// liveDecoder is a decoder of one Reader's stream, parked at pos.
type liveDecoder struct {
	reader uint64
	pos    int64
	rc     io.ReadCloser
}

// NewReadCache returns a cache keeping up to budget decoded bytes (0 = DefaultCacheBudget;
// negative = none) and up to idle parked decoders (0 = a default of 8).
func NewReadCache(budget int64, idle int) *ReadCache {
	if budget == 0 {
		budget = DefaultCacheBudget
	}
	if idle <= 0 {
		idle = defaultIdleDecoders
	}
	c := &ReadCache{budget: max(budget, 0), spans: map[spanKey]*span{}, nIdle: idle}
	c.head.prev, c.head.next = &c.head, &c.head
	return c
}

func (c *ReadCache) getSpan(k spanKey) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.spans[k]
	if s == nil {
		return nil
	}
	s.unlink()
	c.pushFront(s)
	return s.data
}

func (c *ReadCache) putSpan(k spanKey, data []byte) {
	if int64(len(data)) > c.budget {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.spans[k] != nil {
		return
	}
	s := &span{key: k, data: data}
	c.spans[k] = s
	c.pushFront(s)
	c.used += int64(len(data))
	for c.used > c.budget {
		old := c.head.prev
		old.unlink()
		delete(c.spans, old.key)
		c.used -= int64(len(old.data))
	}
}

func (c *ReadCache) pushFront(s *span) {
	s.prev, s.next = &c.head, c.head.next
	c.head.next.prev = s
	c.head.next = s
}

func (s *span) unlink() {
	s.prev.next = s.next
	s.next.prev = s.prev
	s.prev, s.next = nil, nil
}

// takeDecoder removes and returns the parked decoder of reader whose position is the
// highest in [from, to], if any.
func (c *ReadCache) takeDecoder(reader uint64, from, to int64) *liveDecoder {
	c.mu.Lock()
	defer c.mu.Unlock()
	best := -1
	for i, d := range c.idle {
		if d.reader == reader && d.pos >= from && d.pos <= to && (best < 0 || d.pos > c.idle[best].pos) {
			best = i
		}
	}
	if best < 0 {
		return nil
	}
	d := c.idle[best]
	c.idle = append(c.idle[:best], c.idle[best+1:]...)
	return d
}

// park keeps d for a later read, closing the least recently parked decoder when the pool
// is full.
func (c *ReadCache) park(d *liveDecoder) {
	c.mu.Lock()
	var drop *liveDecoder
	if len(c.idle) >= c.nIdle {
		drop = c.idle[0]
		c.idle = append(c.idle[:0], c.idle[1:]...)
	}
	c.idle = append(c.idle, d)
	c.mu.Unlock()
	if drop != nil {
		drop.rc.Close()
	}
}

// forget closes the parked decoders of reader.
func (c *ReadCache) forget(reader uint64) {
	c.mu.Lock()
	var drop []*liveDecoder
	kept := c.idle[:0]
	for _, d := range c.idle {
		if d.reader == reader {
			drop = append(drop, d)
		} else {
			kept = append(kept, d)
		}
	}
	clear(c.idle[len(kept):])
	c.idle = kept
	for k, s := range c.spans {
		if k.reader == reader {
			s.unlink()
			delete(c.spans, k)
			c.used -= int64(len(s.data))
		}
	}
	c.mu.Unlock()
	for _, d := range drop {
		d.rc.Close()
	}
}

var readerIDs atomic.Uint64

// Reader reads a layer's uncompressed stream at any offset, through its Map. It is safe for
// concurrent use.
type Reader struct {
	src   io.ReaderAt
	size  int64 // of src
	m     *Map
	cache *ReadCache
	id    uint64
}

// NewReader returns a Reader of the stream m describes. src holds the blob (for AccessSpill,
// the spill file), srcSize bytes long. cache may be shared by many Readers; nil gives the
// Reader a small one of its own.
func NewReader(src io.ReaderAt, srcSize int64, m *Map, cache *ReadCache) (*Reader, error) {
	if m == nil || m.Access == 0 {
		return nil, errors.New("layer: no map")
	}
	if m.Access != AccessDirect && (len(m.Points) == 0 && m.Size > 0) {
		return nil, fmt.Errorf("layer: %s map without points", m.Access)
	}
	if cache == nil {
		cache = NewReadCache(4*SpanSize, 2)
	}
	return &Reader{src: src, size: srcSize, m: m, cache: cache, id: readerIDs.Add(1)}, nil
}

// Size is the length of the uncompressed stream.
func (r *Reader) Size() int64 { return r.m.Size }

// Map returns the map the Reader follows.
func (r *Reader) Map() *Map { return r.m }

// Close drops the Reader's cached spans and parked decoders. It does not close src.
func (r *Reader) Close() error {
	r.cache.forget(r.id)
	return nil
}

// ReadAt reads len(p) bytes of the uncompressed stream at off.
func (r *Reader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("layer: negative offset")
	}
	if r.m.Access == AccessDirect {
		if off >= r.m.Size {
			return 0, io.EOF
		}
		want := min(int64(len(p)), r.m.Size-off)
		n, err := r.src.ReadAt(p[:want], off)
		if err == nil && int64(n) < int64(len(p)) {
			err = io.EOF
		}
		return n, err
	}
	n := 0
	for n < len(p) {
		pos := off + int64(n)
		if pos >= r.m.Size {
			return n, io.EOF
		}
		rest := p[n:min(int64(len(p)), r.m.Size-off)]
		k := pos / SpanSize
		inSpan := pos - k*SpanSize
		if inSpan == 0 && int64(len(rest)) >= SpanSize {
			// Whole spans: decode straight into p, keeping the cache for small reads.
			whole := len(rest) - len(rest)%SpanSize
			if err := r.decode(p[n:n+whole], pos); err != nil {
				return n, err
			}
			n += whole
			continue
		}
		data, err := r.spanData(k)
		if err != nil {
			return n, err
		}
		if inSpan >= int64(len(data)) {
			return n, io.ErrUnexpectedEOF
		}
		n += copy(rest, data[inSpan:])
	}
	return n, nil
}

// spanData returns the decoded span k, from the cache or decoded now.
func (r *Reader) spanData(k int64) ([]byte, error) {
	key := spanKey{r.id, k}
	if data := r.cache.getSpan(key); data != nil {
		r.cache.Hits.Add(1)
		return data, nil
	}
	r.cache.Misses.Add(1)
	start := k * SpanSize
	data := make([]byte, min(SpanSize, r.m.Size-start))
	if err := r.decode(data, start); err != nil {
		return nil, err
	}
	r.cache.putSpan(key, data)
	return data, nil
}

// decode fills p with the stream from off, which must end within the stream.
func (r *Reader) decode(p []byte, off int64) error {
	// The last point at or before off: resuming there decodes the least.
	i := r.pointBefore(off)
	from := r.m.Points[i].Out
	d := r.cache.takeDecoder(r.id, from, off)
	if d == nil {
		rc, err := r.m.open(r.src, r.size, i)
		if err != nil {
			return err
		}
		r.cache.Resumes.Add(1)
		d = &liveDecoder{reader: r.id, pos: from, rc: rc}
	}
	if err := skip(d.rc, off-d.pos); err != nil {
		d.rc.Close()
		return r.short(err)
	}
	if _, err := io.ReadFull(d.rc, p); err != nil {
		d.rc.Close()
		return r.short(err)
	}
	d.pos = off + int64(len(p))
	if d.pos < r.m.Size {
		r.cache.park(d)
	} else {
		d.rc.Close()
	}
	return nil
}

// short turns the end of a stream shorter than its map into an error.
func (r *Reader) short(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return fmt.Errorf("layer: stream ends before the %d bytes its map records: %w", r.m.Size, io.ErrUnexpectedEOF)
	}
	return err
}

// pointBefore returns the index of the last point with Out <= off.
func (r *Reader) pointBefore(off int64) int {
	pts := r.m.Points
	lo, hi := 0, len(pts) // invariant: pts[lo].Out <= off < pts[hi].Out
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		if pts[mid].Out <= off {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo
}

var skipBuf = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// skip reads and drops n bytes of r.
func skip(r io.Reader, n int64) error {
	if n == 0 {
		return nil
	}
	bp := skipBuf.Get().(*[]byte)
	defer skipBuf.Put(bp)
	buf := *bp
	for n > 0 {
		k, err := io.ReadFull(r, buf[:min(int64(len(buf)), n)])
		n -= int64(k)
		if err != nil {
			return err
		}
	}
	return nil
}
