package verify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/ocirender/ocirender/squashfs"
)

// errUnknownFormat is wrapped by DetectFormat for what is neither a directory, a tar nor a
// squashfs.
var errUnknownFormat = errors.New("not a directory, a tar or a squashfs image")

// Format is a kind of output ocirender writes.
type Format string

// The output formats ScanOutput reads.
const (
	FormatDir      Format = "dir"
	FormatTar      Format = "tar"
	FormatSquashfs Format = "squashfs"
)

// DetectFormat tells what is at p: a directory, a squashfs image (the magic "hsqs"; a
// block device holding one too), or a tar (the "ustar" magic at offset 257 that POSIX and
// GNU tar both write). A symlink to a file is followed. Compressed tars and anything else
// are an error.
func DetectFormat(p string) (Format, error) {
	fi, err := os.Lstat(p)
	if err != nil {
		return "", fmt.Errorf("verify: %w", err)
	}
	if fi.IsDir() {
		return FormatDir, nil
	}
	if fi.Mode()&os.ModeSymlink != 0 {
		// A symlink to a file is followed; one to a directory is not (ScanDir scans
		// exactly the tree it is given).
		if fi, err = os.Stat(p); err != nil {
			return "", fmt.Errorf("verify: %w", err)
		}
		if fi.IsDir() {
			return "", fmt.Errorf("verify: %s: a symlink to a directory: give the directory itself", p)
		}
	}
	if !fi.Mode().IsRegular() && fi.Mode()&os.ModeDevice == 0 {
		return "", fmt.Errorf("verify: %s: %w", p, errUnknownFormat)
	}
	f, err := os.Open(p)
	if err != nil {
		return "", fmt.Errorf("verify: %w", err)
	}
	defer f.Close()
	head := make([]byte, 512)
	n, err := io.ReadFull(f, head)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return "", fmt.Errorf("verify: %w", err)
	}
	return sniff(head[:n], p)
}

// sniff names the format of a file that starts with head.
func sniff(head []byte, p string) (Format, error) {
	switch {
	case bytes.HasPrefix(head, []byte("hsqs")):
		return FormatSquashfs, nil
	case len(head) >= 262 && bytes.Equal(head[257:262], []byte("ustar")):
		return FormatTar, nil
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}), bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}),
		bytes.HasPrefix(head, []byte("\xfd7zXZ")), bytes.HasPrefix(head, []byte("BZh")):
		return "", fmt.Errorf("verify: %s: a compressed file: decompress the tar first", p)
	}
	return "", fmt.Errorf("verify: %s: %w", p, errUnknownFormat)
}

// ScanOutput lists the tree of the output at p, in the given format (DetectFormat), hashing
// contents with up to workers goroutines where the format allows (0 = GOMAXPROCS).
func ScanOutput(ctx context.Context, p string, format Format, workers int) ([]Entry, error) {
	switch format {
	case FormatDir:
		return ScanDir(p)
	case FormatTar:
		f, err := os.Open(p)
		if err != nil {
			return nil, fmt.Errorf("verify: %w", err)
		}
		defer f.Close()
		return ScanTar(ctx, f)
	case FormatSquashfs:
		f, err := os.Open(p)
		if err != nil {
			return nil, fmt.Errorf("verify: %w", err)
		}
		defer f.Close()
		size, err := f.Seek(0, io.SeekEnd) // Stat says 0 for a block device
		if err != nil {
			return nil, fmt.Errorf("verify: %w", err)
		}
		sq, err := squashfs.Open(f, size)
		if err != nil {
			return nil, fmt.Errorf("verify: %s: %w", p, err)
		}
		return ScanSquashfs(ctx, sq, workers)
	}
	return nil, fmt.Errorf("verify: unknown format %q", format)
}
