package fsview

import (
	"context"
	"errors"
	"io"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// file is a regular file. Its bytes are read from the layer that holds them, through the
// layer's io.ReaderAt, straight into go-fuse's reply buffer.
type file struct{ node }

var (
	_ = (fs.NodeOpener)((*file)(nil))
	_ = (fs.NodeReader)((*file)(nil))
	_ = (fs.NodeWriter)((*file)(nil))
	_ = (fs.NodeFsyncer)((*file)(nil))
	_ = (fs.NodeFlusher)((*file)(nil))
	_ = (fs.NodeAllocater)((*file)(nil))
	_ = (fs.NodeCopyFileRanger)((*file)(nil))
)

// Open allows reading only. No handle is needed: Read finds everything in the index. The
// page cache survives a reopen (the content never changes), and close needs no flush.
func (f *file) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if flags&syscall.O_ACCMODE != syscall.O_RDONLY || flags&syscall.O_TRUNC != 0 {
		return nil, 0, syscall.EROFS
	}
	return nil, fuse.FOPEN_KEEP_CACHE | fuse.FOPEN_NOFLUSH, 0
}

func (f *file) Read(ctx context.Context, fh fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	v := f.v
	in := v.ix.Inode(v.ix.Ino(f.id))
	if off < 0 {
		return nil, syscall.EINVAL
	}
	if off >= in.Size {
		return fuse.ReadResultData(nil), 0
	}
	n := min(int64(len(dest)), in.Size-off)
	r, err := v.layers.File(&in)
	if err != nil {
		v.logf("read %s: %v", v.ix.Path(f.id), err)
		return nil, syscall.EIO
	}
	k, err := r.ReadAt(dest[:n], off)
	if int64(k) < n {
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF // the layer's stream ends inside the file
		}
		v.logf("read %s at %d: layer %d: %v", v.ix.Path(f.id), off, in.Layer, err)
		return nil, syscall.EIO
	}
	return fuse.ReadResultData(dest[:n]), 0
}

func (f *file) Write(ctx context.Context, fh fs.FileHandle, data []byte, off int64) (uint32, syscall.Errno) {
	return 0, syscall.EROFS
}

// Fsync has nothing to write back.
func (f *file) Fsync(ctx context.Context, fh fs.FileHandle, flags uint32) syscall.Errno { return 0 }

// Flush has nothing to write back.
func (f *file) Flush(ctx context.Context, fh fs.FileHandle) syscall.Errno { return 0 }

func (f *file) Allocate(ctx context.Context, fh fs.FileHandle, off, size uint64, mode uint32) syscall.Errno {
	return syscall.EROFS
}

// CopyFileRange is asked only when both files are in this view, so the destination is too.
func (f *file) CopyFileRange(ctx context.Context, fhIn fs.FileHandle, offIn uint64, out *fs.Inode, fhOut fs.FileHandle,
	offOut, length, flags uint64) (uint32, syscall.Errno) {
	return 0, syscall.EROFS
}
