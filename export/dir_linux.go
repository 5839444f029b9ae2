package export

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/ocirender/ocirender/index"
)

// Dir writes the tree of ix into a new directory dst, reading file content from layers.
//
// dst must not exist, or be an empty directory; anything else is ErrExists. The tree is built
// under a temporary name next to dst (".NAME.tmp-*") and renamed into place at the end (an
// empty dst is replaced by it, so it cannot be a mount point); on any error or cancellation
// the temporary tree is removed and nothing is left behind.
//
// Every path is created relative to an open directory file descriptor with *at syscalls whose
// final component is never followed (mkdirat, openat O_CREAT|O_EXCL|O_NOFOLLOW, symlinkat,
// mknodat, linkat, fchownat and utimensat with AT_SYMLINK_NOFOLLOW), and every name is a
// single component checked for "/" and "..": a symlink from the image is never written
// through, and nothing is written outside the temporary tree.
//
// Each entry gets, in this order: its owner (numeric uid/gid), its xattrs byte for byte, its
// mode (after chown, which clears setuid and security.capability; before which a read-only
// file would refuse user.* xattrs to a non-root user) and last its mtime with nanoseconds
// (atime is set to the mtime too). Directories are created 0700 and get their own metadata
// after their children exist; regular files get theirs after their content is written, by
// the worker goroutine that wrote it. Names of one inode (Nlink > 1) become hard links to the
// first name in walk order.
//
// Without CAP_CHOWN, ownership is left to the current user, and so are the owners the
// kernel refuses (EINVAL for an id not mapped in a user namespace, EPERM); without CAP_MKNOD
// (or where the kernel refuses device nodes, as in a user namespace) character and block
// devices are skipped. Each is reported once through opts.Notice and is not an error. So are xattrs a
// namespace refuses with ENOTSUP or EPERM (trusted.* and security.capability without root,
// user.* on symlinks, any namespace on a file system without xattrs): one notice per
// namespace, and the export goes on.
//
// Nothing is fsynced: like tar and umoci, Dir leaves durability to the caller (sync(1)).
func Dir(ctx context.Context, dst string, ix *index.Index, layers Layers, opts DirOptions) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	dst = filepath.Clean(dst)
	if ix.Type(index.Root) != index.Dir {
		return errors.New("export: the root of the index is not a directory")
	}
	if err := CheckDirDest(dst); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-*")
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	defer func() {
		if err != nil {
			if rerr := removeTree(unix.AT_FDCWD, tmp); rerr != nil {
				err = fmt.Errorf("%w (and removing %s: %v)", err, tmp, rerr)
			}
		}
	}()
	root, err := unix.Open(tmp, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("export: open %s: %w", tmp, err)
	}
	w := newDirWriter(ix, layers, opts, root)
	err = w.run(ctx)
	unix.Close(root)
	if err != nil {
		return err
	}
	// rename(2) replaces an empty directory and fails on anything else, so a dst that was
	// created or filled meanwhile is never clobbered.
	if err := unix.Rename(tmp, dst); err != nil {
		if err == unix.ENOTEMPTY || err == unix.EEXIST || err == unix.ENOTDIR {
			return fmt.Errorf("%w: %s", ErrExists, dst)
		}
		return fmt.Errorf("export: %w", &os.LinkError{Op: "rename", Old: tmp, New: dst, Err: err})
	}
	return nil
}

// dirWriter is the state of one Dir call. The walker goroutine owns links, stack and mknod;
// the workers share the rest.
type dirWriter struct {
	ix      *index.Index
	layers  Layers
	root    int // fd of the temporary root directory
	workers int
	jobs    chan fileJob

	chown bool // CAP_CHOWN: set owners
	mknod bool // CAP_MKNOD and the kernel agrees: create device nodes

	links map[index.InodeID]index.ID // first name of each inode with several names
	stack []openDir                  // directories open on the walker's way down

	noCopyRange []atomic.Bool // per layer: copy_file_range failed, use pread and write
	notices     notices
	progress    progress
}

// fileJob is a regular file created by the walker, waiting for its content and metadata.
type fileJob struct {
	fd int
	id index.ID
}

type openDir struct {
	id index.ID
	fd int
}

// skipped marks, in dirWriter.links, an inode whose first name was not created.
const skipped = index.NoParent

func newDirWriter(ix *index.Index, layers Layers, opts DirOptions, root int) *dirWriter {
	w := &dirWriter{
		ix:          ix,
		layers:      layers,
		root:        root,
		workers:     opts.Workers,
		links:       map[index.InodeID]index.ID{},
		noCopyRange: make([]atomic.Bool, len(layers)),
		notices:     notices{fn: opts.Notice},
		progress:    progress{fn: opts.Progress},
	}
	if w.workers <= 0 {
		w.workers = runtime.GOMAXPROCS(0)
	}
	w.chown, w.mknod = capable(unix.CAP_CHOWN), capable(unix.CAP_MKNOD)
	switch {
	case !w.chown && !w.mknod:
		w.notices.once("root", "not root: ownership not set (files belong to the current user) and device nodes skipped")
	case !w.chown:
		w.notices.once("root", "no CAP_CHOWN: ownership not set (files belong to the current user)")
	case !w.mknod:
		w.notices.once("root", "no CAP_MKNOD: device nodes skipped")
	}
	return w
}

// capable reports whether the process has capability c in its effective set.
func capable(c uint) bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return os.Geteuid() == 0
	}
	return data[c/32].Effective&(1<<(c%32)) != 0
}

// run creates the tree under w.root while the workers fill in regular files, and returns the
// first error of any of them.
func (w *dirWriter) run(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	w.jobs = make(chan fileJob, 4*w.workers)
	var wg sync.WaitGroup
	for range w.workers {
		wg.Go(func() { w.work(ctx, cancel) })
	}
	err := w.walk(ctx, w.root, index.Root)
	if err == nil {
		root := w.ix.Inode(w.ix.Ino(index.Root))
		err = w.setAttrs(w.root, "", index.Root, &root)
	}
	if err != nil {
		cancel(err)
	}
	close(w.jobs)
	wg.Wait()
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	w.progress.report()
	return nil
}

// path names id in errors and notices.
func (w *dirWriter) path(id index.ID) string {
	if id == index.Root {
		return "."
	}
	return w.ix.Path(id)
}

func (w *dirWriter) fail(id index.ID, op string, err error) error {
	return fmt.Errorf("export: %s: %s: %w", w.path(id), op, err)
}

// walk creates the children of directory dir, open as fd, and everything below them.
func (w *dirWriter) walk(ctx context.Context, fd int, dir index.ID) error {
	w.stack = append(w.stack, openDir{id: dir, fd: fd})
	defer func() { w.stack = w.stack[:len(w.stack)-1] }()
	for _, id := range w.ix.Children(dir) {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := w.create(ctx, fd, dir, id); err != nil {
			return err
		}
	}
	return nil
}

// create makes entry id in directory dir, open as fd.
func (w *dirWriter) create(ctx context.Context, fd int, dir, id index.ID) error {
	name := w.ix.Name(id)
	if !validName(name) {
		return fmt.Errorf("export: %s: bad name %q in the index", w.path(dir), name)
	}
	ino := w.ix.Ino(id)
	in := w.ix.Inode(ino)
	if in.Type != index.Dir && in.Nlink > 1 {
		first, ok := w.links[ino]
		if ok {
			if first == skipped {
				return nil
			}
			return w.link(fd, id, first)
		}
		w.links[ino] = id
	}
	switch in.Type {
	case index.Dir:
		if err := unix.Mkdirat(fd, name, 0o700); err != nil {
			return w.fail(id, "mkdir", err)
		}
		sub, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return w.fail(id, "open", err)
		}
		err = w.walk(ctx, sub, id)
		if err == nil {
			err = w.setAttrs(sub, "", id, &in)
		}
		unix.Close(sub)
		return err
	case index.Reg:
		f, err := unix.Openat(fd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return w.fail(id, "create", err)
		}
		select {
		case w.jobs <- fileJob{fd: f, id: id}:
			return nil
		case <-ctx.Done():
			unix.Close(f)
			return ctx.Err()
		}
	case index.Symlink:
		if err := unix.Symlinkat(in.Link, fd, name); err != nil {
			return w.fail(id, "symlink", err)
		}
	case index.Char, index.Block, index.Fifo, index.Socket:
		made, err := w.node(fd, name, id, &in)
		if err != nil {
			return err
		}
		if !made {
			w.links[ino] = skipped
			return nil
		}
	default:
		return w.fail(id, "create", fmt.Errorf("unknown file type %s", in.Type))
	}
	return w.setAttrs(fd, name, id, &in)
}

// node makes a device, fifo or socket. It reports false, and no error, for a device node it
// may not create.
func (w *dirWriter) node(fd int, name string, id index.ID, in *index.Inode) (bool, error) {
	mode := uint32(0o600)
	var dev uint64
	switch in.Type {
	case index.Char:
		mode |= unix.S_IFCHR
		dev = unix.Mkdev(in.Devmajor, in.Devminor)
	case index.Block:
		mode |= unix.S_IFBLK
		dev = unix.Mkdev(in.Devmajor, in.Devminor)
	case index.Fifo:
		mode |= unix.S_IFIFO
	case index.Socket:
		mode |= unix.S_IFSOCK
	}
	device := in.Type == index.Char || in.Type == index.Block
	if device && !w.mknod {
		return false, nil
	}
	err := unix.Mknodat(fd, name, mode, int(dev))
	if err == unix.EPERM && device {
		// CAP_MKNOD inside a user namespace does not reach devices.
		w.mknod = false
		w.notices.once("mknod", fmt.Sprintf("cannot create device nodes here (%v, first %s): device nodes skipped", err, w.path(id)))
		return false, nil
	}
	if err != nil {
		return false, w.fail(id, "mknod", err)
	}
	return true, nil
}

// link makes entry id, in directory fd, another name of the inode first already names.
func (w *dirWriter) link(fd int, id, first index.ID) error {
	parent := w.ix.Parent(first)
	src := -1
	for i := len(w.stack) - 1; i >= 0; i-- {
		if w.stack[i].id == parent {
			src = w.stack[i].fd
			break
		}
	}
	if src < 0 {
		var err error
		if src, err = openBeneath(w.root, w.ix.Path(parent)); err != nil {
			return w.fail(id, "open directory of "+w.ix.Path(first), err)
		}
		defer unix.Close(src)
	}
	// linkat without AT_SYMLINK_FOLLOW links a symlink itself, never its target.
	if err := unix.Linkat(src, w.ix.Name(first), fd, w.ix.Name(id), 0); err != nil {
		return w.fail(id, "link to "+w.ix.Path(first), err)
	}
	return nil
}

// openBeneath opens directory rel below the directory root without following any symlink,
// as an O_PATH descriptor good for *at syscalls.
func openBeneath(root int, rel string) (int, error) {
	if rel == "" {
		rel = "."
	}
	how := unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV,
	}
	fd, err := unix.Openat2(root, rel, &how)
	if err != unix.ENOSYS {
		return fd, err
	}
	// Before Linux 5.6: one component at a time, none of them followed.
	fd, err = unix.Openat(root, ".", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	for _, c := range strings.Split(rel, "/") {
		if err != nil {
			return -1, err
		}
		if c == "" || c == "." {
			continue
		}
		if c == ".." {
			unix.Close(fd)
			return -1, unix.EXDEV
		}
		next, oerr := unix.Openat(fd, c, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		unix.Close(fd)
		fd, err = next, oerr
	}
	return fd, err
}

// setAttrs gives an entry its owner, xattrs, mode and mtime, in that order: chown clears
// setuid and security.capability, so it goes first; mode goes after the xattrs so that a
// read-only file still takes user.* xattrs when we are not root (chmod touches no xattr).
// With name "", fd is the entry itself (a directory or a regular file); otherwise the entry
// is name in directory fd, and no call follows it if it is a symlink.
func (w *dirWriter) setAttrs(fd int, name string, id index.ID, in *index.Inode) error {
	if w.chown {
		var err error
		if name == "" {
			err = unix.Fchown(fd, int(in.UID), int(in.GID))
		} else {
			err = unix.Fchownat(fd, name, int(in.UID), int(in.GID), unix.AT_SYMLINK_NOFOLLOW)
		}
		if err == unix.EINVAL || err == unix.EPERM {
			// An id not mapped in our user namespace, or a file system that refuses.
			w.notices.once("chown", fmt.Sprintf("cannot set some owners (%v, first %d:%d on %s): left to the current user",
				err, in.UID, in.GID, w.path(id)))
		} else if err != nil {
			return w.fail(id, fmt.Sprintf("chown %d:%d", in.UID, in.GID), err)
		}
	}
	for _, x := range in.Xattrs {
		var err error
		if name == "" {
			err = unix.Fsetxattr(fd, x.Name, []byte(x.Value), 0)
		} else {
			// Symlinks, devices, fifos and sockets cannot be opened safely for fsetxattr;
			// /proc/self/fd/N is exactly directory fd, and lsetxattr does not follow name.
			err = unix.Lsetxattr("/proc/self/fd/"+strconv.Itoa(fd)+"/"+name, x.Name, []byte(x.Value), 0)
		}
		if err == unix.ENOTSUP || err == unix.EPERM {
			ns, _, _ := strings.Cut(x.Name, ".")
			w.notices.once("xattr "+ns, fmt.Sprintf("cannot set %s.* xattrs (%v, first %s on %s): skipped", ns, err, x.Name, w.path(id)))
			continue
		}
		if err != nil {
			return w.fail(id, "setxattr "+x.Name, err)
		}
	}
	if in.Type != index.Symlink { // Linux has no symlink modes
		var err error
		if name == "" {
			err = unix.Fchmod(fd, in.Mode&0o7777)
		} else {
			// name was made by mknodat a moment ago in a directory only we write to:
			// it is not a symlink. (fchmodat's AT_SYMLINK_NOFOLLOW needs Linux 6.6.)
			err = unix.Fchmodat(fd, name, in.Mode&0o7777, 0)
		}
		if err != nil {
			return w.fail(id, fmt.Sprintf("chmod %04o", in.Mode), err)
		}
	}
	t := unix.NsecToTimespec(in.Mtime)
	ts := []unix.Timespec{t, t}
	var err error
	if name == "" {
		err = unix.UtimesNanoAt(fd, "", ts, unix.AT_EMPTY_PATH)
	} else {
		err = unix.UtimesNanoAt(fd, name, ts, unix.AT_SYMLINK_NOFOLLOW)
	}
	if err != nil {
		return w.fail(id, "set mtime", err)
	}
	return nil
}

// work fills in regular files until jobs is closed; after an error it only closes them.
func (w *dirWriter) work(ctx context.Context, cancel context.CancelCauseFunc) {
	var buf []byte
	for j := range w.jobs {
		if ctx.Err() != nil {
			unix.Close(j.fd)
			continue
		}
		if err := w.writeFile(ctx, j.fd, j.id, &buf); err != nil {
			cancel(err)
		}
	}
}

// writeFile writes the content of regular file id into fd, sets its metadata and closes it.
func (w *dirWriter) writeFile(ctx context.Context, fd int, id index.ID, buf *[]byte) error {
	e := w.ix.Entry(id)
	err := w.copyContent(ctx, fd, id, &e, buf)
	if err == nil {
		err = w.setAttrs(fd, "", id, &e.Inode)
	}
	if cerr := unix.Close(fd); err == nil && cerr != nil {
		err = w.fail(id, "close", cerr)
	}
	return err
}

const (
	copyBufSize   = 1 << 20
	copyRangeStep = 32 << 20 // bytes per copy_file_range call: keeps cancellation and progress lively
)

// copyContent copies e's content from its layer into fd: inside the kernel when the layer
// is a FileSpan, else through buf.
func (w *dirWriter) copyContent(ctx context.Context, fd int, id index.ID, e *index.Entry, buf *[]byte) error {
	if e.Size == 0 {
		return nil
	}
	r, err := w.layers.File(&e.Inode)
	if err != nil {
		return fmt.Errorf("export: %w (%s)", err, w.path(id))
	}
	short := func(done int64, err error) error {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("export: %s: reading layer %d content (%d bytes at offset %d): %w after %d bytes",
			w.path(id), e.Layer, e.Size, e.Offset, err, done)
	}
	var done int64
	if span, ok := w.layers[e.Layer].(FileSpan); ok && !w.noCopyRange[e.Layer].Load() {
		f, base := span.FileSpan()
		var rerr, werr error
		done, rerr, werr = copyRange(ctx, f, base+e.Offset, fd, e.Size, &w.progress)
		switch {
		case werr != nil:
			return w.fail(id, "write", werr)
		case rerr == nil:
			return nil
		case refused(rerr):
			// Go on from done with pread and write; when nothing was copied, the same pair
			// of file systems will refuse again: don't ask for the rest of this layer.
			if done == 0 {
				w.noCopyRange[e.Layer].Store(true)
			}
		default:
			return short(done, rerr)
		}
	}
	if *buf == nil {
		*buf = make([]byte, copyBufSize)
	}
	out := fdWriter(fd)
	for done < e.Size {
		if err := ctx.Err(); err != nil {
			return err
		}
		p := (*buf)[:min(int64(len(*buf)), e.Size-done)]
		n, err := r.ReadAt(p, done)
		if n > 0 {
			if _, werr := out.Write(p[:n]); werr != nil {
				return w.fail(id, "write", werr)
			}
			done += int64(n)
			w.progress.add(int64(n))
		}
		if n < len(p) {
			if err == nil {
				err = io.ErrNoProgress
			}
			return short(done, err)
		}
	}
	return nil
}

// copyRange copies size bytes from f at off to the current offset of fd with
// copy_file_range. It tells read-side errors (rerr, including a short source) from errors
// of the destination (werr); copy_file_range cannot say which side failed, so everything but
// the source coming up short or refusing the copy is counted as the destination's.
func copyRange(ctx context.Context, f *os.File, off int64, fd int, size int64, p *progress) (done int64, rerr, werr error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, err, nil
	}
	cerr := rc.Control(func(src uintptr) {
		for done < size {
			if err := ctx.Err(); err != nil {
				rerr = err
				return
			}
			n, err := unix.CopyFileRange(int(src), &off, fd, nil, int(min(size-done, copyRangeStep)), 0)
			switch {
			case err == unix.EINTR:
				continue
			case refused(err) || err == unix.EIO:
				rerr = err
				return
			case err != nil:
				werr = err
				return
			case n == 0:
				rerr = io.ErrUnexpectedEOF
				return
			}
			done += int64(n)
			p.add(int64(n))
		}
	})
	if cerr != nil {
		return done, cerr, nil
	}
	return done, rerr, werr
}

// refused reports whether copy_file_range declined a copy that pread and write can do.
func refused(err error) bool {
	return err == unix.EXDEV || err == unix.EINVAL || err == unix.ENOSYS || err == unix.EOPNOTSUPP
}

// fdWriter writes to a file descriptor it does not own (an *os.File would close it when
// collected).
type fdWriter int

func (w fdWriter) Write(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		k, err := unix.Write(int(w), p[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return n, err
		}
		if k == 0 {
			return n, io.ErrShortWrite
		}
		n += k
	}
	return n, nil
}

// removeTree removes name in directory dirfd and everything below it without following
// symlinks, first giving directories back the owner permissions the export may have taken
// away (a half-built tree can hold 0500 or 0000 directories, which a non-root user could
// otherwise not empty).
func removeTree(dirfd int, name string) error {
	err := unix.Unlinkat(dirfd, name, 0)
	if err == nil || err == unix.ENOENT {
		return nil
	}
	if err != unix.EISDIR && err != unix.EPERM {
		return err
	}
	const flags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	fd, err := unix.Openat(dirfd, name, flags, 0)
	if err == unix.EACCES {
		// unlinkat said EISDIR, so name is a directory, not a symlink to follow.
		if err = unix.Fchmodat(dirfd, name, 0o700, 0); err == nil {
			fd, err = unix.Openat(dirfd, name, flags, 0)
		}
	}
	if err != nil {
		return err
	}
	unix.Fchmod(fd, 0o700) // a failure shows up below as the unlink that needs it
	d := os.NewFile(uintptr(fd), name)
	names, err := d.Readdirnames(-1)
	for _, n := range names {
		if err == nil {
			err = removeTree(fd, n)
		}
	}
	d.Close()
	if err != nil {
		return err
	}
	return unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR)
}
