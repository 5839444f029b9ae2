package squashfs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash/crc64"
	"io"
	"sync"

	"github.com/ocirender/ocirender/export"
)

// fileRec is one regular inode: where its content comes from and, once the data pass is
// done, where its blocks and tail went.
type fileRec struct {
	layer   int32
	offset  int64
	size    int64
	start   uint64   // position of the first block in the image
	blocks  []uint32 // on-disk size words of the full blocks (0 = sparse)
	sparse  uint64   // bytes of blocks left out as all zeros
	frag    uint32   // fragment block holding the tail, or noFragment
	fragOff uint32   // offset of the tail in the uncompressed fragment block
	dupOf   int32    // file whose data this one shares, or -1
}

// fragEntry is one fragment block as the fragment table records it.
type fragEntry struct {
	start uint64
	word  uint32
}

// job is one data or fragment block on its way through the compressors.
type job struct {
	file  int32 // index into files, or -1 for a fragment block
	block int32 // block number within the file
	in    []byte
	out   []byte
	word  uint32 // on-disk size word
	zero  bool   // all zeros: stored as a hole
	err   error
	done  chan struct{}
}

// dataPass streams the content of every regular file through a pool of compressors and
// writes the blocks in the order the files are listed, so the image does not depend on how
// many compressors ran or which finished first.
type dataPass struct {
	bs       int
	layers   export.Layers
	files    []fileRec
	order    []int32 // files in the order their data is written
	frags    []fragEntry
	out      *outWriter
	codec    *codec
	threads  int
	progress func(int64)

	// Producer state.
	tails   map[uint64]tailLoc // tail content hash -> first tail with it
	bySize  map[int64][]int32  // multi-block files by size, for whole-file dedup
	sums    map[int32][sha256.Size]byte
	scratch []byte
	dups    bool // some data was deduplicated

	written, reported int64
}

// tailLoc is where a tail went and where its bytes came from (to compare candidates).
type tailLoc struct {
	frag, off uint32
	layer     int32
	src       int64
}

var crcTable = crc64.MakeTable(crc64.ECMA)

// zeros is compared against to find blocks that are holes.
var zeros [1 << 20]byte

func (d *dataPass) run(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	d.tails = map[uint64]tailLoc{}
	d.bySize = map[int64][]int32{}
	d.sums = map[int32][sha256.Size]byte{}
	d.scratch = make([]byte, max(d.bs, 1<<20))

	k := 2*d.threads + 2 // blocks in flight: bounds memory whatever the file sizes
	free := make(chan *job, k)
	for range k {
		free <- &job{in: make([]byte, d.bs), done: make(chan struct{}, 1)}
	}
	order := make(chan *job, k)
	work := make(chan *job, k)
	var wg sync.WaitGroup
	for range d.threads {
		c, err := d.codec.make()
		if err != nil {
			return fmt.Errorf("squashfs: %s: %w", d.codec.name, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range work {
				d.compress(c, j)
				j.done <- struct{}{}
			}
		}()
	}
	written := make(chan error, 1)
	go func() { written <- d.write(order, free, cancel) }()

	perr := d.produce(ctx, free, order, work)
	close(order)
	close(work)
	werr := <-written
	wg.Wait()
	if werr != nil {
		return werr
	}
	if perr != nil {
		if c := context.Cause(ctx); c != nil && !errors.Is(c, context.Canceled) {
			return c
		}
		return perr
	}
	return nil
}

// compress runs in the pool: holes are found, blocks compressed, and stored raw when
// compression does not make them smaller.
func (d *dataPass) compress(c compressor, j *job) {
	if j.file >= 0 && bytes.Equal(j.in, zeros[:len(j.in)]) {
		j.zero, j.word = true, 0
		return
	}
	out, err := c.compress(j.out, j.in)
	if err != nil {
		j.err = fmt.Errorf("squashfs: %s: %w", d.codec.name, err)
		return
	}
	j.out = out
	if len(out) < len(j.in) {
		j.word = uint32(len(out))
	} else {
		j.word = uint32(len(j.in)) | dataRaw
	}
}

// write takes the jobs in the order they were made, waits for each and appends it to the
// image.
func (d *dataPass) write(order <-chan *job, free chan<- *job, fail context.CancelCauseFunc) error {
	var first error
	for j := range order {
		<-j.done
		if first == nil {
			first = j.err
			if first == nil {
				first = d.place(j)
			}
			if first != nil {
				fail(first)
			}
		}
		j.in, j.out, j.zero, j.err = j.in[:cap(j.in)], j.out[:0], false, nil
		free <- j
	}
	return first
}

func (d *dataPass) place(j *job) error {
	data := j.out
	if j.word&dataRaw != 0 {
		data = j.in
	}
	if j.file < 0 {
		d.frags = append(d.frags, fragEntry{start: uint64(d.out.pos()), word: j.word})
	} else {
		rec := &d.files[j.file]
		if j.block == 0 {
			rec.start = uint64(d.out.pos())
		}
		rec.blocks[j.block] = j.word
		if j.zero {
			rec.sparse += uint64(len(j.in))
			data = nil
		}
	}
	if _, err := d.out.Write(data); err != nil {
		return err
	}
	d.written += int64(len(j.in))
	if d.progress != nil && d.written-d.reported >= 8<<20 {
		d.progress(d.written)
		d.reported = d.written
	}
	return nil
}

// produce reads every file's content in d.order, cuts it into blocks and tails, decides what
// is a duplicate, packs tails into fragment blocks and hands the blocks to the pool.
func (d *dataPass) produce(ctx context.Context, free <-chan *job, order, work chan<- *job) error {
	get := func() (*job, error) {
		select {
		case j := <-free:
			return j, nil
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	}
	submit := func(j *job) {
		order <- j
		work <- j
	}
	var frag *job     // fragment block being filled
	var fragNo uint32 // its number in the fragment table
	fill := 0
	for _, f := range d.order {
		rec := &d.files[f]
		if rec.size == 0 {
			continue
		}
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
		r, err := d.reader(rec)
		if err != nil {
			return err
		}
		nblocks := rec.size / int64(d.bs)
		tail := int(rec.size % int64(d.bs))
		if nblocks > 0 {
			dup, err := d.duplicate(f)
			if err != nil {
				return err
			}
			if dup >= 0 {
				rec.dupOf = dup
				rec.frag, rec.fragOff = d.files[dup].frag, d.files[dup].fragOff
				d.dups = true
				continue
			}
			rec.blocks = make([]uint32, nblocks)
			for b := range nblocks {
				j, err := get()
				if err != nil {
					return err
				}
				j.file, j.block = f, int32(b)
				j.in = j.in[:d.bs]
				if err := readFull(r, j.in, rec.offset+b*int64(d.bs)); err != nil {
					return d.readErr(rec, err)
				}
				submit(j)
			}
		}
		if tail == 0 {
			continue
		}
		if frag != nil && fill+tail > d.bs {
			frag.in = frag.in[:fill]
			submit(frag)
			frag, fragNo = nil, fragNo+1
		}
		if frag == nil {
			if frag, err = get(); err != nil {
				return err
			}
			frag.file, fill = -1, 0
		}
		src := rec.offset + nblocks*int64(d.bs)
		t := frag.in[fill : fill+tail]
		if err := readFull(r, t, src); err != nil {
			return d.readErr(rec, err)
		}
		sum := crc64.Checksum(t, crcTable) ^ uint64(tail)
		loc, seen := d.tails[sum]
		if seen {
			same, err := d.sameTail(loc, t)
			if err != nil {
				return err
			}
			if same {
				rec.frag, rec.fragOff = loc.frag, loc.off
				d.dups = true
				continue
			}
		}
		rec.frag, rec.fragOff = fragNo, uint32(fill)
		if !seen {
			d.tails[sum] = tailLoc{frag: fragNo, off: uint32(fill), layer: rec.layer, src: src}
		}
		fill += tail
	}
	if frag != nil && fill > 0 {
		frag.in = frag.in[:fill]
		submit(frag)
	}
	return nil
}

// reader returns the layer holding rec's content.
func (d *dataPass) reader(rec *fileRec) (io.ReaderAt, error) {
	if rec.layer < 0 || int(rec.layer) >= len(d.layers) || d.layers[rec.layer] == nil {
		return nil, fmt.Errorf("squashfs: no content for layer %d", rec.layer)
	}
	return d.layers[rec.layer], nil
}

func (d *dataPass) readErr(rec *fileRec, err error) error {
	return fmt.Errorf("squashfs: reading layer %d content at offset %d: %w", rec.layer, rec.offset, err)
}

// readFull fills b from r at off.
func readFull(r io.ReaderAt, b []byte, off int64) error {
	n, err := r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// sameTail compares t with the bytes of an earlier tail, read again from its layer.
func (d *dataPass) sameTail(loc tailLoc, t []byte) (bool, error) {
	r, err := d.reader(&fileRec{layer: loc.layer})
	if err != nil {
		return false, err
	}
	b := d.scratch[:len(t)]
	if err := readFull(r, b, loc.src); err != nil {
		return false, fmt.Errorf("squashfs: reading layer %d content at offset %d: %w", loc.layer, loc.src, err)
	}
	return bytes.Equal(b, t), nil
}

// duplicate returns an earlier file with the same content as multi-block file f, or -1.
// Content is hashed only when an earlier file has the same size.
func (d *dataPass) duplicate(f int32) (int32, error) {
	size := d.files[f].size
	cands := d.bySize[size]
	d.bySize[size] = append(cands, f)
	if len(cands) == 0 {
		return -1, nil
	}
	sum, err := d.sum(f)
	if err != nil {
		return -1, err
	}
	for _, c := range cands {
		if d.files[c].dupOf >= 0 {
			continue // its original is a candidate too
		}
		cs, err := d.sum(c)
		if err != nil {
			return -1, err
		}
		if cs == sum {
			return c, nil
		}
	}
	return -1, nil
}

func (d *dataPass) sum(f int32) ([sha256.Size]byte, error) {
	if s, ok := d.sums[f]; ok {
		return s, nil
	}
	rec := &d.files[f]
	r, err := d.reader(rec)
	if err != nil {
		return [sha256.Size]byte{}, err
	}
	h := sha256.New()
	n, err := io.CopyBuffer(h, io.NewSectionReader(r, rec.offset, rec.size), d.scratch)
	if err == nil && n != rec.size {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return [sha256.Size]byte{}, d.readErr(rec, err)
	}
	var s [sha256.Size]byte
	h.Sum(s[:0])
	d.sums[f] = s
	return s, nil
}
