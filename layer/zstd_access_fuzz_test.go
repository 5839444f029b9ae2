package layer

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"testing"
	"time"
)

// FuzzZstdFrames decodes any bytes as zstd with a Recorder, with a frame limit small
// enough that rewinds into the spill happen: it must not panic, must return the bytes and
// the error Decompress returns without a Recorder, must give a map exactly when the
// stream decodes, and every point of that map must resume to the same bytes.
func FuzzZstdFrames(f *testing.F) {
	data := layerLike(20000, 34)
	f.Add(zstdFrames(f, data, 3000), uint16(0))
	f.Add(zstdFrames(f, data, 3000), uint16(2)) // a limit below the frame size: a spill
	f.Add(cat(zstdSkippableFrame("x"), zstdFrames(f, data[:5000], 1000), zstdSkippableFrame(""),
		zstdFrames(f, data[5000:], 15000)), uint16(3))
	f.Add(zstdFrames(f, data, len(data)), uint16(10))
	f.Add(cat(zstdFrames(f, nil, 1), zstdFrames(f, data[:100], 100), zstdFrames(f, nil, 1)), uint16(1))
	f.Add(appendRawFrame(appendRawFrame(nil, data[:300]), data[300:900]), uint16(0))
	f.Add(runTool(f, data, "zstd", "-c", "-q", "-B4KiB"), uint16(1))
	f.Add(cat(runTool(f, data[:7000], "zstd", "-c", "-q"), runTool(f, data[7000:], "zstd", "-c", "-q", "--no-check")), uint16(5))
	f.Add(zstdFrames(f, data, 3000)[:5432], uint16(0))
	f.Add(cat(zstdFrames(f, data, 3000), []byte("trailing")), uint16(0))
	f.Add([]byte("(\xb5/\xfdd00C0\x000"), uint16(257)) // WriteTo gives the block before its error, Read does not
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, blob []byte, limit uint16) {
		if Detect(blob) != Zstd {
			return
		}
		hang := time.AfterFunc(20*time.Second, func() { panic(fmt.Sprintf("hangs on %x (%d)", blob, limit)) })
		defer hang.Stop()
		const maxSize = 256 << 10
		viaWriteTo := limit&0x100 != 0 // the decoder's WriteTo may deliver more before an error
		var want []byte
		rc, wantErr := Decompress(bytes.NewReader(blob), Zstd, true, Options{MaxSize: maxSize})
		if wantErr == nil {
			want, wantErr = readAllWith(rc, viaWriteTo)
			rc.Close()
		}

		var spill *os.File
		rec := &Recorder{Interval: 1 + int64(limit>>8)*512, Spill: func() (*os.File, error) {
			var err error
			if spill, err = os.CreateTemp(dir, "spill"); err == nil {
				os.Remove(spill.Name())
			}
			return spill, err
		}}
		if limit&0xff != 0 {
			rec.zs.limit = int64(limit&0xff) * 1000
		}
		rc, err := Decompress(bytes.NewReader(blob), Zstd, true, Options{MaxSize: maxSize, Record: rec})
		var got []byte
		if err == nil {
			got, err = readAllWith(rc, viaWriteTo)
			rc.Close()
		}
		if spill != nil {
			defer spill.Close()
		}
		if !bytes.Equal(got, want) || fmt.Sprint(err) != fmt.Sprint(wantErr) {
			t.Fatalf("with a Recorder: %d bytes, %v; without: %d bytes, %v", len(got), err, len(want), wantErr)
		}
		m, merr := rec.Map()
		if err != nil {
			if merr == nil && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("Map() of a stream that failed (%v): %v map, no error", err, m.Access)
			}
			return
		}
		if merr != nil {
			t.Fatalf("Map() = %v", merr)
		}
		if err := m.validate(); err != nil {
			t.Fatalf("Map.validate() = %v", err)
		}
		if m.Size != int64(len(got)) {
			t.Fatalf("Map.Size = %d, want %d", m.Size, len(got))
		}
		var src io.ReaderAt = bytes.NewReader(blob)
		size := int64(len(blob))
		switch m.Access {
		case AccessSpill:
			fi, err := spill.Stat()
			if err != nil {
				t.Fatal(err)
			}
			src, size = spill, fi.Size()
		case AccessZstdFrames:
		default:
			t.Fatalf("Map().Access = %v", m.Access)
		}
		for i, p := range m.Points {
			rc, err := openZstdAt(src, size, p)
			if err != nil {
				t.Fatalf("openZstdAt(point %d of %d: %+v) = %v", i, len(m.Points), p, err)
			}
			rest, err := io.ReadAll(rc)
			rc.Close()
			if err != nil || !bytes.Equal(rest, got[p.Out:]) {
				t.Fatalf("point %d of %d (%+v, %v map): %d bytes, %v; want %d bytes", i, len(m.Points), p, m.Access, len(rest), err, len(got)-int(p.Out))
			}
		}
	})
}
