package layer

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/klauspost/compress/flate"
)

// FuzzGzipResume records checkpoints of arbitrary bytes read as gzip: either Decompress
// fails and there is no map, or every point resumes to the same bytes as the sequential
// decoding. Resuming the same points in a damaged copy of the blob must not panic either.
func FuzzGzipResume(f *testing.F) {
	data := layerLike(20000, 71)
	f.Add(gzipWith(f, data, 6, 0), uint16(1000), uint16(0))
	f.Add(gzipWith(f, data, 1, 3000), uint16(1), uint16(77))
	f.Add(stdGzipWith(f, data, 6, 700), uint16(500), uint16(300))
	f.Add(gzipWith(f, data, flate.NoCompression, 0), uint16(4096), uint16(9))
	f.Add(gzipWith(f, data, flate.HuffmanOnly, 0), uint16(2000), uint16(1000))
	f.Add(cat(gzipWith(f, data[:5000], 9, 0), gzipWith(f, nil, 6, 0), gzipWith(f, data[5000:], 6, 2000)), uint16(3000), uint16(5))
	f.Add(cat(gzipWith(f, data[:3000], 6, 0), make([]byte, 100)), uint16(100), uint16(2))
	f.Add(gzipAllHeaderFields(f, data[:5000]), uint16(1500), uint16(20))
	f.Add(emptyBlocks(f, data[:9000], 300, data[8000:]), uint16(9000), uint16(4))
	f.Fuzz(func(t *testing.T, blob []byte, interval, damage uint16) {
		hang := time.AfterFunc(20*time.Second, func() { panic(fmt.Sprintf("FuzzGzipResume hangs on %x (%d)", blob, interval)) })
		defer hang.Stop()
		const maxSize = 1 << 20
		if !bytes.HasPrefix(blob, gzipMagic) {
			return // read as another format, or refused
		}
		rec := &Recorder{Interval: int64(interval) + 1}
		rc, err := Decompress(bytes.NewReader(blob), Gzip, true, Options{Record: rec, MaxSize: maxSize})
		if err != nil {
			return
		}
		want, err := io.ReadAll(rc)
		rc.Close()
		m, mapErr := rec.Map()
		if err != nil {
			if !errors.Is(mapErr, ErrNoMap) {
				t.Fatalf("Decompress failed (%v), yet Map() = %v", err, mapErr)
			}
			return
		}
		if mapErr != nil {
			t.Fatalf("Decompress succeeded, Map() = %v", mapErr)
		}
		if m.Size != int64(len(want)) || len(m.Points) == 0 || m.Points[0].Out != 0 || m.Points[0].In != 0 {
			t.Fatalf("Size %d for %d bytes, %d points", m.Size, len(want), len(m.Points))
		}
		step := max(len(m.Points)/40, 1) // bounded work on streams with many points
		for i := 0; i < len(m.Points); i += step {
			p := m.Points[i]
			if i > 0 && p.Out < m.Points[i-1].Out {
				t.Fatalf("Points[%d].Out = %d, before Points[%d].Out = %d", i, p.Out, i-1, m.Points[i-1].Out)
			}
			r, err := m.open(bytes.NewReader(blob), int64(len(blob)), i)
			if err != nil {
				t.Fatalf("resuming at Points[%d] = {%d %d}: %v", i, p.Out, p.In, err)
			}
			got, err := io.ReadAll(r)
			r.Close()
			if err != nil || !bytes.Equal(got, want[p.Out:]) {
				t.Fatalf("resuming at Points[%d] = {%d %d}: %d bytes, %v; want %d bytes, differs at %d",
					i, p.Out, p.In, len(got), err, len(want)-int(p.Out), firstDiff(got, want[p.Out:]))
			}
		}

		// The same points in a damaged blob: errors, or wrong bytes, but no panic.
		bad := bytes.Clone(blob)
		bad[int(damage)%len(bad)] ^= byte(damage>>8) | 1
		for i := 0; i < len(m.Points); i += step {
			r, err := m.open(bytes.NewReader(bad), int64(len(bad)), i)
			if err != nil {
				continue
			}
			var out countingWriter
			io.Copy(&out, io.LimitReader(r, 64<<20))
			r.Close()
		}
	})
}
