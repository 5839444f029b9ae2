package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os/exec"
	"sort"

	digest "github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ocirender/ocirender/internal/imagetest"
)

// A scheme re-encodes layer i (oldest first); encoders cycle by position.
// The uncompressed tars, and so the merged tree, stay the same: the copy is
// judged against umoci's unpack of the original.
var schemes = map[string][]encoder{
	// Every gzip shape we know of, plus an uncompressed layer; umoci 0.4.7
	// unpacks all of them, so the copy is its own oracle too.
	"gzip-variants": {
		{"pigz -6 (sync-flush markers between 128 KiB blocks)", pigz("-6")},
		{"pigz -0 (stored blocks only)", pigz("-0")},
		{"two concatenated gzip members", gzipMembers},
		{"uncompressed tar", plain},
		{"pigz -9 -i -b 32 (independent 32 KiB blocks)", pigz("-9", "-i", "-b", "32")},
		{"compress/gzip with Flush every 64 KiB (empty stored blocks)", gzipFlushing},
	},
	// umoci 0.4.7 refuses zstd; compare with the gzip original.
	"zstd": {
		{"zstd, one frame per 4 MiB", zstdFrames(4 << 20)},
		{"zstd -3, one frame", zstdFrames(0)},
	},
}

type encoder struct {
	what   string
	encode func(tarData []byte) (imagetest.Blob, error)
}

func schemeNames() []string {
	var names []string
	for n := range schemes {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func recompress(layout, from, to, scheme string) error {
	encs, ok := schemes[scheme]
	if !ok {
		return fmt.Errorf("unknown scheme %q (have %v)", scheme, schemeNames())
	}
	l := &imagetest.Layout{Dir: layout}
	return l.Recompress(from, to, func(i int, tarData []byte) (imagetest.Blob, error) {
		enc := encs[i%len(encs)]
		layer, err := enc.encode(tarData)
		if err != nil {
			return layer, fmt.Errorf("%s: %w", enc.what, err)
		}
		layer.DiffID = digest.FromBytes(tarData)
		fmt.Printf("%s: layer %d: %s (%d -> %d bytes)\n", to, i, enc.what, len(tarData), len(layer.Data))
		return layer, nil
	})
}

func filter(name string, args []string, in []byte) ([]byte, error) {
	cmd := exec.Command(name, args...)
	cmd.Stdin = bytes.NewReader(in)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s %v: %w: %s", name, args, err, errb.String())
	}
	return out.Bytes(), nil
}

func pigz(args ...string) func([]byte) (imagetest.Blob, error) {
	return func(tarData []byte) (imagetest.Blob, error) {
		data, err := filter("pigz", append([]string{"-c", "-n"}, args...), tarData)
		return imagetest.Blob{MediaType: v1.MediaTypeImageLayerGzip, Data: data}, err
	}
}

func plain(tarData []byte) (imagetest.Blob, error) {
	return imagetest.Blob{MediaType: v1.MediaTypeImageLayer, Data: tarData}, nil
}

func gzipMembers(tarData []byte) (imagetest.Blob, error) {
	var buf bytes.Buffer
	half := len(tarData) / 2
	for _, part := range [][]byte{tarData[:half], tarData[half:]} {
		zw := gzip.NewWriter(&buf)
		if _, err := zw.Write(part); err != nil {
			return imagetest.Blob{}, err
		}
		if err := zw.Close(); err != nil {
			return imagetest.Blob{}, err
		}
	}
	return imagetest.Blob{MediaType: v1.MediaTypeImageLayerGzip, Data: buf.Bytes()}, nil
}

func gzipFlushing(tarData []byte) (imagetest.Blob, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	for off := 0; off < len(tarData); off += 64 << 10 {
		end := min(off+64<<10, len(tarData))
		if _, err := zw.Write(tarData[off:end]); err != nil {
			return imagetest.Blob{}, err
		}
		if err := zw.Flush(); err != nil {
			return imagetest.Blob{}, err
		}
	}
	if err := zw.Close(); err != nil {
		return imagetest.Blob{}, err
	}
	return imagetest.Blob{MediaType: v1.MediaTypeImageLayerGzip, Data: buf.Bytes()}, nil
}

// zstdFrames compresses with the zstd tool, one frame per chunk bytes of
// input (one frame for all when chunk is 0).
func zstdFrames(chunk int) func([]byte) (imagetest.Blob, error) {
	return func(tarData []byte) (imagetest.Blob, error) {
		if chunk == 0 {
			chunk = len(tarData) + 1
		}
		var out []byte
		for off := 0; off < len(tarData); off += chunk {
			end := min(off+chunk, len(tarData))
			frame, err := filter("zstd", []string{"-q", "-c", "-3"}, tarData[off:end])
			if err != nil {
				return imagetest.Blob{}, err
			}
			out = append(out, frame...)
		}
		return imagetest.Blob{MediaType: v1.MediaTypeImageLayerZstd, Data: out}, nil
	}
}
