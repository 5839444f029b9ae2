package verify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"runtime"
	"sync"
)

// emptyDigest is the sha256 of no bytes.
const emptyDigest = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// hashJob is the content of one file to hash.
type hashJob struct {
	size int64
	open func() (io.Reader, error)
	what func() string // names the file in errors
	sum  *string       // where the digest goes
}

// runLen is how much content one worker hashes before taking the next run of jobs: jobs
// come in the order their content lies in its source, and a run keeps one worker reading
// one stretch of it front to back (a layer reader continues its decoder; a squashfs reads
// on).
const runLen = 8 << 20

// hashAll hashes every job with up to workers goroutines (0 = GOMAXPROCS).
func hashAll(ctx context.Context, jobs []hashJob, workers int) error {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	var runs [][]hashJob
	for i := 0; i < len(jobs); {
		j, n := i, int64(0)
		for j < len(jobs) && (j == i || n+jobs[j].size <= runLen) {
			n += jobs[j].size
			j++
		}
		runs = append(runs, jobs[i:j])
		i = j
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	work := make(chan []hashJob)
	var wg sync.WaitGroup
	for range min(workers, len(runs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 1<<20)
			for run := range work {
				for _, j := range run {
					if err := hashOne(ctx, j, buf); err != nil {
						cancel(err)
						break
					}
				}
			}
		}()
	}
feed:
	for _, r := range runs {
		select {
		case work <- r:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return err
	}
	return nil
}

func hashOne(ctx context.Context, j hashJob, buf []byte) error {
	if err := ctx.Err(); err != nil {
		return context.Cause(ctx)
	}
	if j.size == 0 {
		*j.sum = emptyDigest
		return nil
	}
	r, err := j.open()
	if err != nil {
		return fmt.Errorf("%s: %w", j.what(), err)
	}
	h := sha256.New()
	var n int64
	if wt, ok := r.(io.WriterTo); ok { // a squashfs file hands over its decoded blocks
		n, err = wt.WriteTo(h)
	} else {
		n, err = io.CopyBuffer(h, io.LimitReader(r, j.size), buf)
	}
	if err == nil && n != j.size {
		err = fmt.Errorf("content ends after %d of %d bytes: %w", n, j.size, io.ErrUnexpectedEOF)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", j.what(), err)
	}
	*j.sum = hex.EncodeToString(h.Sum(nil))
	return nil
}
