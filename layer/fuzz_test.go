package layer

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"
)

// FuzzDecompress feeds arbitrary bytes to Decompress with every declared
// compression: it must not panic, must finish, and must never return more
// than MaxSize bytes.
func FuzzDecompress(f *testing.F) {
	data := layerLike(5000, 31)
	f.Add(data, uint8(Uncompressed), true)
	f.Add(gzipWith(f, data, 6, 1000), uint8(Gzip), true)
	f.Add(cat(gzipWith(f, data[:100], 1, 0), gzipWith(f, data[100:], 9, 0)), uint8(Gzip), false)
	f.Add(gzipAllHeaderFields(f, data[:300]), uint8(Gzip), true)
	f.Add(zstdFrames(f, data, 2000), uint8(Zstd), true)
	f.Add(cat(zstdSkippableFrame("x"), zstdFrames(f, data, 5000)), uint8(Zstd), false)
	f.Add(xzGo(f, data), uint8(Xz), true)
	f.Add(runTool(f, data, "bzip2", "-c"), uint8(Bzip2), true)
	f.Add(zstdFrames(f, data, 5000), uint8(Gzip), true) // mislabelled
	f.Add(cat(tarHeader("x"), data[:100]), uint8(Gzip), true)
	f.Add(gzipWith(f, make([]byte, 1<<20), 9, 0), uint8(Gzip), true) // expands past MaxSize
	f.Fuzz(func(t *testing.T, blob []byte, kind uint8, known bool) {
		hang := time.AfterFunc(20*time.Second, func() { panic(fmt.Sprintf("Decompress hangs on %x (%d, %v)", blob, kind, known)) })
		defer hang.Stop()
		const maxSize = 256 << 10
		c := Compression(kind % 5)
		rc, err := Decompress(bytes.NewReader(blob), c, known, Options{MaxSize: maxSize})
		if err != nil {
			return
		}
		defer rc.Close()
		var out countingWriter
		if kind&0x80 != 0 {
			_, err = io.CopyBuffer(&out, struct{ io.Reader }{rc}, make([]byte, 777))
		} else {
			_, err = io.Copy(&out, rc)
		}
		if out.n > maxSize {
			t.Fatalf("Decompress returned %d bytes, more than MaxSize %d", out.n, maxSize)
		}
		if errors.Is(err, ErrTooLarge) && out.n != maxSize {
			t.Fatalf("ErrTooLarge after %d bytes, want exactly MaxSize %d", out.n, maxSize)
		}
	})
}

type countingWriter struct{ n int64 }

func (w *countingWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	return len(p), nil
}
