package layer

import (
	"hash/crc32"
	"io"
	"math"
	"sync"
)

// Parallel decoding of one gzip member, in the style of pugz and rapidgzip,
// behind [Options.Parallel].
//
// The compressed input is cut into chunks of parChunkSize bytes
// (parinput.go). The first DEFLATE block of a member is known; every later
// chunk goes to a worker that guesses where the first block starting in
// it is and decodes from there without the window before it, into uint16s
// that keep references into the unknown window as markers (parchunk.go).
// Each job stops at the first block header at or after the end of its
// chunk: if the guess for the next chunk was right, that is where the next
// job started.
//
// The consumer here is the only one whose word counts. It keeps an
// ordinary sequential inflater (the same code as the sequential reader) and
// takes the jobs' results in chunk order. A result is used only when the
// inflater stands at a block header at exactly the bit where the result
// starts; then the result is what the inflater would have produced itself,
// once its markers are replaced by bytes of the last 32 KiB of output, and
// the inflater jumps to where the job stopped, with the job's decoder state.
// Otherwise (a false guess, a job that failed, a window reference before
// the start of the member) the result is dropped and the inflater decodes
// on by itself until it meets the next result. So output and errors are
// exactly those of the sequential reader: every error comes from the
// consumer's own inflater, which decodes every byte no accepted result
// covers, and the CRC-32 and length of each member are checked over the
// output as delivered.
//
// Multi-member streams work, with less parallelism: a job stops at the end
// of its member, and the consumer decodes the rest of that chunk itself;
// the chunks after it are decoded in parallel again. pigz writes a single
// member, so only concatenated files are affected.
//
// Memory: at most workers+1 results are in flight, each at most
// parMaxJobOut bytes of output (uint16 output counts double), plus the
// compressed chunks between the oldest reader and a little beyond the
// furthest one: about 64 MiB with two workers, whatever the layer size.
// A chunk that would expand further stops its job early, and the consumer
// decodes the rest of it itself.

const (
	parChunkSize = 4 << 20
	parMaxJobOut = 16 << 20
	parReadAhead = 1 // chunks read beyond the furthest one asked for
)

// parallelConfig holds the tunables, so tests can use small chunks.
type parallelConfig struct {
	workers   int
	chunkSize int
	maxJobOut int
}

type parGzipReader struct {
	g   gzipReader // header, trailer and member logic, with g.f the consumer's inflater
	in  *chunkInput
	cfg parallelConfig

	pieces []piece // decoded output not yet returned
	rp     int     // in pieces[0]

	memberOut int64 // output of the current member
	win       history

	queue     []*chunkJob // dispatched, in chunk order
	nextChunk *inputChunk // the next chunk to dispatch
	jobs      chan *chunkJob
	wg        sync.WaitGroup
	stopped   bool
	bufs      *parBuffers
	oldest    *inputChunk // the first chunk whose buffer is not yet recycled

	stats parStats
}

// parStats counts what happened to the jobs, for tests and benchmarks.
type parStats struct {
	adopted, dropped int
	adoptedOut       int64 // output taken from results
	markerOut        int64 // of which resolved from markers
}

// A piece of output; pooled is the buffer to reuse after it.
type piece struct {
	b      []byte
	pooled *[]byte
}

func newParGzipReader(src io.Reader, cfg parallelConfig) (*parGzipReader, error) {
	in, first := newChunkInput(src, cfg.chunkSize, parReadAhead)
	p := &parGzipReader{in: in, cfg: cfg, jobs: make(chan *chunkJob, cfg.workers+1),
		bufs: newParBuffers(cfg.workers), oldest: first}
	p.g.f = newInflater(&chunkCursor{in: in, c: first})
	for range cfg.workers {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			w := &worker{in: in, bufs: p.bufs, f: newInflater(nil), maxOut: cfg.maxJobOut}
			w.f.out = nil
			for j := range p.jobs {
				j.res <- w.run(j)
			}
		}()
	}
	if err := p.g.readHeader(); err != nil {
		p.shutdown()
		return nil, err
	}
	// The member's first block is known: its job decodes from there.
	start := p.g.f.bitPos()
	node := first
	for int64(node.index+1)*int64(cfg.chunkSize)*8 <= start {
		node = in.successor(node)
	}
	p.dispatch(node, true, start)
	p.nextChunk = in.successor(node)
	p.fill()
	return p, nil
}

func (p *parGzipReader) chunkBit(c *inputChunk) int64 {
	return int64(c.index) * int64(p.cfg.chunkSize) * 8
}

func (p *parGzipReader) dispatch(c *inputChunk, exact bool, start int64) {
	if !exact {
		start = p.chunkBit(c)
	}
	j := &chunkJob{node: c, exact: exact, startBit: start,
		endBit: p.chunkBit(c) + int64(p.cfg.chunkSize)*8, res: make(chan *chunkResult, 1)}
	p.in.want(c.index + 1)
	p.queue = append(p.queue, j)
	p.jobs <- j
}

// fill dispatches jobs until workers+1 are queued or the input ends.
func (p *parGzipReader) fill() {
	for len(p.queue) <= p.cfg.workers && !p.in.pastEnd(p.nextChunk.index) {
		p.dispatch(p.nextChunk, false, 0)
		p.nextChunk = p.in.successor(p.nextChunk)
	}
}

// drop discards the oldest job's result.
func (p *parGzipReader) drop() {
	j := p.queue[0]
	if j.result != nil {
		p.stats.dropped++
		j.result.release(p.bufs)
	}
	p.queue[0] = nil
	p.queue = p.queue[1:]
	p.fill()
}

// shutdown stops the workers and the input reader and waits for them.
func (p *parGzipReader) shutdown() {
	if p.stopped {
		return
	}
	p.stopped = true
	p.in.close()
	close(p.jobs)
	p.wg.Wait()
	for _, j := range p.queue {
		if !j.received {
			j.result = <-j.res
		}
		if j.result != nil {
			j.result.release(p.bufs)
		}
	}
	p.queue = nil
}

func (p *parGzipReader) releasePieces() {
	for _, pc := range p.pieces {
		if pc.pooled != nil {
			p.bufs.putBytes(pc.pooled)
		}
	}
	p.pieces, p.rp = nil, 0
}

func (p *parGzipReader) Close() error {
	p.shutdown()
	p.releasePieces()
	return nil
}

func (p *parGzipReader) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	if err := p.produce(); err != nil {
		return 0, err
	}
	n := copy(b, p.pieces[0].b[p.rp:])
	p.advance(n)
	return n, nil
}

func (p *parGzipReader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		if err := p.produce(); err != nil {
			if err == io.EOF {
				return total, nil
			}
			return total, err
		}
		n, err := w.Write(p.pieces[0].b[p.rp:])
		p.advance(n)
		total += int64(n)
		if err != nil {
			p.g.err = err
			p.shutdown()
			return total, err
		}
	}
}

func (p *parGzipReader) advance(n int) {
	p.rp += n
	if p.rp == len(p.pieces[0].b) {
		if pc := p.pieces[0]; pc.pooled != nil {
			p.bufs.putBytes(pc.pooled)
		}
		p.pieces[0] = piece{}
		p.pieces, p.rp = p.pieces[1:], 0
	}
}

// emit queues output, and counts it into the member's CRC, length and window.
func (p *parGzipReader) emit(b []byte, pooled *[]byte) {
	if len(b) == 0 {
		if pooled != nil {
			p.bufs.putBytes(pooled)
		}
		return
	}
	p.g.crc = crc32.Update(p.g.crc, crc32.IEEETable, b)
	p.g.size += uint32(len(b))
	p.memberOut += int64(len(b))
	p.win.push(b)
	p.pieces = append(p.pieces, piece{b, pooled})
}

// produce makes output available unless the stream is over.
func (p *parGzipReader) produce() error {
	for len(p.pieces) == 0 {
		if p.g.err != nil {
			return p.g.err
		}
		var err error
		switch p.g.state {
		case gzipBody:
			err = p.body()
		case gzipNext:
			if err = p.g.nextMember(); err == nil {
				p.memberOut = 0
				p.win.reset()
			}
		}
		if err != nil {
			// Output decoded before the error goes out first.
			p.g.err = err
			p.shutdown()
			continue
		}
		p.recycle()
	}
	return nil
}

// recycle hands the buffers of chunks that nobody reads any more back to
// the input: the consumer's inflater is past them, and every job that
// could read them has been taken.
func (p *parGzipReader) recycle() {
	cur, ok := p.g.f.src.(*chunkCursor)
	if !ok {
		return
	}
	limit := cur.c.index
	if len(p.queue) > 0 {
		limit = min(limit, p.queue[0].node.index)
	}
	for p.oldest.index < limit {
		p.in.recycle(p.oldest)
		p.oldest = p.in.successor(p.oldest)
	}
}

// body decodes or adopts some output of the current member.
func (p *parGzipReader) body() error {
	f := p.g.f
	stop := int64(math.MaxInt64)
	for len(p.queue) > 0 {
		j := p.queue[0]
		if !j.received {
			select {
			case j.result = <-j.res:
				j.received = true
			default:
				if f.bitPos() < j.startBit {
					stop = j.startBit
					break
				}
				j.result, j.received = <-j.res, true
			}
			if !j.received {
				break
			}
		}
		r := j.result
		if r == nil {
			p.drop()
			continue
		}
		if f.state != stateHeader {
			stop = r.start
			if r.stored {
				stop = r.start - 10
			}
			break
		}
		pos := f.bitPos()
		if !r.stored {
			if pos == r.start {
				return p.adopt(r)
			}
			if pos > r.start {
				p.drop()
				continue
			}
			stop = r.start
			break
		}
		// A stored block's LEN field at r.start: the header before it
		// starts somewhere in the 3 to 10 bits before.
		if r.start < pos+3 {
			p.drop()
			continue
		}
		if (pos+3+7)&^7 != r.start {
			stop = r.start - 10
			if pos >= stop {
				stop = pos + 1 // the header here does not lead to it
			}
			break
		}
		if err := f.blockHeader(); err != nil {
			return err
		}
		if f.state == stateStored && f.final == r.final {
			return p.adopt(r)
		}
		p.drop() // not the same block after all
		stop = math.MaxInt64
		if len(p.queue) > 0 {
			stop = p.queue[0].startBit
		}
		break
	}
	return p.inflate(stop)
}

// inflate decodes sequentially up to a block header at or after stop.
func (p *parGzipReader) inflate(stop int64) error {
	f := p.g.f
	if f.op >= outLimit {
		f.slide()
	}
	start := f.op
	f.stopAt = stop
	done, err := f.inflate()
	if err != nil {
		return err // what it decoded may run past the end of the input
	}
	p.emit(f.out[start:f.op], nil)
	if done {
		if err := p.g.readTrailer(); err != nil {
			return err
		}
		p.g.state = gzipNext
	}
	return nil
}

// adopt takes r's output and moves the inflater to where r's job stopped.
func (p *parGzipReader) adopt(r *chunkResult) error {
	f := p.g.f
	if r.minSrc < windowSize && int64(windowSize-r.minSrc) > p.memberOut {
		// A reference before the start of the member: the inflater will
		// find it and report it.
		p.drop()
		return p.inflate(r.start + 1)
	}
	p.stats.adopted++
	p.stats.dropped-- // drop below
	out0 := p.memberOut
	defer func() { p.stats.adoptedOut += p.memberOut - out0 }()
	var window [windowSize]byte
	if len(r.wides) > 0 {
		copy(window[windowSize-len(p.win.bytes()):], p.win.bytes())
	}
	for i, wb := range r.wides {
		wide := (*wb)[windowSize:r.wideEnd[i]]
		p.stats.markerOut += int64(len(wide))
		for len(wide) > 0 {
			buf := p.bufs.getBytes()
			out := (*buf)[:min(len(wide), len(*buf))]
			for i, v := range wide[:len(out)] {
				if v < 256 {
					out[i] = byte(v)
				} else {
					out[i] = window[v-256]
				}
			}
			wide = wide[len(out):]
			p.emit(out, buf)
		}
	}
	for i, s := range r.segs {
		p.emit((*s)[windowSize:r.segEnd[i]], s)
	}
	r.segs = nil

	// Continue where the job stopped, with the last 32 KiB as history.
	f.src = p.in.seekCursor(r.endNode, r.end>>3)
	f.in, f.ip, f.end, f.inBase, f.srcErr = f.in[:0], 0, 0, r.end>>3, nil
	f.bits, f.nb = 0, 0
	if b := uint(r.end & 7); b > 0 {
		if err := f.need(b); err != nil {
			return err
		}
		f.consume(b)
	}
	h := p.win.bytes()
	f.op = windowSize
	f.histStart = windowSize - len(h)
	copy(f.out[f.histStart:], h)
	f.state, f.final, f.storedLeft = r.state, r.endFinal, r.storedLeft
	if r.state == stateHuffman {
		if r.fixed {
			f.lit, f.dist = &fixedLit, &fixedDist
		} else {
			f.dynLit, f.dynDist = r.tables.lit, r.tables.dist
			f.lit, f.dist = &f.dynLit, &f.dynDist
		}
	}
	p.drop()
	return nil
}

// history keeps the last windowSize bytes of output.
type history struct {
	buf [2 * windowSize]byte
	n   int
}

func (h *history) reset() { h.n = 0 }

func (h *history) push(b []byte) {
	if len(b) >= windowSize {
		h.n = copy(h.buf[:], b[len(b)-windowSize:])
		return
	}
	if h.n+len(b) > len(h.buf) {
		keep := windowSize - len(b)
		copy(h.buf[:], h.buf[h.n-keep:h.n])
		h.n = keep
	}
	h.n += copy(h.buf[h.n:], b)
}

func (h *history) bytes() []byte {
	return h.buf[max(h.n-windowSize, 0):h.n]
}
