package layer

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// layerLike returns size bytes that look like an uncompressed layer: tar
// headers followed by a mix of text, machine-code-like binary, zero runs
// and incompressible (already compressed) data, padded to 512 bytes. gzip -6
// compresses it about as well as a real /usr (2.4:1).
func layerLike(size int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	words := []string{"the", "int", "return", "if", "else", "for", "func", "static", "const",
		"struct", "error", "nil", "string", "package", "import", "void", "char", "include",
		"define", "usr", "lib", "share", "bin", "config", "value", "name", "data", "x86_64",
		"linux", "gnu", "0", "1", "{", "}", "(", ")", ";", "=", "==", "->", "/*", "*/"}
	opcodes := [][]byte{{0x48, 0x89, 0xe5}, {0x48, 0x8b, 0x45}, {0xe8}, {0xc3}, {0x55},
		{0x48, 0x83, 0xec}, {0x0f, 0x1f, 0x44, 0x00, 0x00}, {0x89, 0x7d}, {0x74}, {0x75}}
	var b bytes.Buffer
	b.Grow(size + 64<<10)
	for n := 0; b.Len() < size; n++ {
		var hdr [512]byte
		name := fmt.Sprintf("usr/share/pkg%d/file-%d.%s", n%97, n, words[rng.IntN(len(words))])
		copy(hdr[:], name)
		copy(hdr[100:], "0000644\x000000000\x000000000\x00")
		fileSize := rng.IntN(96 << 10)
		copy(hdr[124:], fmt.Sprintf("%011o\x00%011o\x00", fileSize, 1700000000+n))
		copy(hdr[257:], "ustar\x0000root\x00")
		b.Write(hdr[:])
		start := b.Len()
		switch k := rng.IntN(10); {
		case k < 4: // text
			for b.Len()-start < fileSize {
				b.WriteString(words[int(rng.ExpFloat64()*6)%len(words)])
				if rng.IntN(8) == 0 {
					b.WriteString("\n\t")
				} else {
					b.WriteByte(' ')
				}
			}
		case k < 7: // code-like binary
			for b.Len()-start < fileSize {
				b.Write(opcodes[int(rng.ExpFloat64()*3)%len(opcodes)])
				if rng.IntN(3) == 0 {
					b.WriteByte(byte(rng.IntN(64)))
				}
			}
		case k < 8: // zeros
			b.Write(make([]byte, fileSize))
		default: // incompressible
			chunk := make([]byte, fileSize)
			for i := range chunk {
				chunk[i] = byte(rng.Uint32())
			}
			b.Write(chunk)
		}
		b.Truncate(start + fileSize)
		if pad := b.Len() % 512; pad != 0 {
			b.Write(make([]byte, 512-pad))
		}
	}
	return b.Bytes()[:size]
}

// runTool compresses in with an external program reading stdin, or skips
// the test when the program is missing.
func runTool(t testing.TB, in []byte, name string, args ...string) []byte {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("%s not installed: %v", name, err)
	}
	cmd := exec.Command(name, args...)
	cmd.Stdin = bytes.NewReader(in)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %v: %v: %s", name, args, err, stderr.Bytes())
	}
	return out.Bytes()
}

// runToolOnFile compresses in as a named file, so that tools record the
// name (gzip's FNAME) and know the size in advance (zstd's window).
func runToolOnFile(t testing.TB, in []byte, name string, args ...string) []byte {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("%s not installed: %v", name, err)
	}
	path := filepath.Join(t.TempDir(), "layer.tar")
	if err := os.WriteFile(path, in, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(name, append(args, path)...)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %v: %v: %s", name, args, err, stderr.Bytes())
	}
	return out.Bytes()
}

// rawInflate decodes a raw DEFLATE stream with the inflater, returning the
// output and how many input bytes the stream took.
func rawInflate(data []byte) ([]byte, int64, error) {
	f := newInflater(bytes.NewReader(data))
	f.reset()
	var got []byte
	for {
		if f.op >= outLimit {
			f.slide()
		}
		start := f.op
		done, err := f.inflate()
		if err != nil {
			return got, 0, err
		}
		got = append(got, f.out[start:f.op]...)
		if done {
			return got, f.offset(), nil
		}
	}
}

// readAllWith reads r to the end, through WriteTo when viaWriteTo is set
// and with small Reads otherwise.
func readAllWith(r io.Reader, viaWriteTo bool) ([]byte, error) {
	var b bytes.Buffer
	if viaWriteTo {
		_, err := r.(io.WriterTo).WriteTo(&b)
		return b.Bytes(), err
	}
	buf := make([]byte, 1000) // odd size, to cut through every boundary
	for {
		n, err := r.Read(buf)
		b.Write(buf[:n])
		if err == io.EOF {
			return b.Bytes(), nil
		}
		if err != nil {
			return b.Bytes(), err
		}
	}
}
