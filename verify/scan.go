package verify

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ScanDir walks the tree at root with lstat, never following symlinks, and
// returns one Entry per path (the root included, with Path ""), sorted
// bytewise by Path. It reads every regular file to compute its digest.
//
// root must be a directory; a symlink to a directory is refused, so that the
// scanned tree is exactly the one on disk. The walk holds a descriptor for each
// directory on the way down and names every entry relative to its directory
// (through /proc/self/fd where a call takes no descriptor), so a tree deeper than
// PATH_MAX (4096 bytes below root, as an image may hold) is scanned like any other.
func ScanDir(root string) ([]Entry, error) {
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) {
		return nil, fmt.Errorf("scan %s: not a directory", root)
	}
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", root, &fs.PathError{Op: "open", Path: root, Err: err})
	}
	d := os.NewFile(uintptr(fd), root)
	defer d.Close()
	w := &dirWalk{root: root, groups: map[inodeKey][]int{}}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("scan %s: %w", root, &fs.PathError{Op: "fstat", Path: root, Err: err})
	}
	// The root is named by its own path (it has no directory descriptor above it here).
	e, err := scanEntry(place{dirfd: unix.AT_FDCWD, name: root, shown: root}, "", &st)
	if err == nil {
		w.entries = append(w.entries, e)
		err = w.dir(d, "")
	}
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", root, err)
	}
	nameLinkGroups(w.groups, func(i int) *Entry { return &w.entries[i] })
	sort.Slice(w.entries, func(i, j int) bool { return w.entries[i].Path < w.entries[j].Path })
	return w.entries, nil
}

type inodeKey struct{ dev, ino uint64 }

// dirWalk is the state of one ScanDir.
type dirWalk struct {
	root    string
	groups  map[inodeKey][]int
	entries []Entry
}

// dir scans the children of the open directory d, which is rel below the root.
func (w *dirWalk) dir(d *os.File, rel string) error {
	names, err := d.Readdirnames(-1)
	if err != nil {
		return &fs.PathError{Op: "readdir", Path: w.shown(rel), Err: err}
	}
	sort.Strings(names)
	dirfd := int(d.Fd())
	for _, name := range names {
		crel := name
		if rel != "" {
			crel = rel + "/" + name
		}
		at := place{dirfd: dirfd, name: name, shown: w.shown(crel)}
		var st unix.Stat_t
		if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return &fs.PathError{Op: "lstat", Path: at.shown, Err: err}
		}
		e, err := scanEntry(at, crel, &st)
		if err != nil {
			return err
		}
		if e.Type != Dir && st.Nlink > 1 {
			k := inodeKey{uint64(st.Dev), st.Ino}
			w.groups[k] = append(w.groups[k], len(w.entries))
		}
		w.entries = append(w.entries, e)
		if e.Type != Dir {
			continue
		}
		fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return &fs.PathError{Op: "open", Path: at.shown, Err: err}
		}
		sub := os.NewFile(uintptr(fd), at.shown)
		err = w.dir(sub, crel)
		sub.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

func (w *dirWalk) shown(rel string) string { return filepath.Join(w.root, rel) }

// place names one object of the tree: name in the directory dirfd (AT_FDCWD for the root,
// named by its path), and the path errors show.
type place struct {
	dirfd int
	name  string
	shown string
}

// path is a name for the calls that take no directory descriptor (readlink, lgetxattr):
// /proc/self/fd/DIRFD/NAME resolves DIRFD's directory and then NAME in it, without
// following NAME, and it is short however deep the directory lies.
func (p place) path() string {
	if p.dirfd == unix.AT_FDCWD {
		return p.name
	}
	return "/proc/self/fd/" + strconv.Itoa(p.dirfd) + "/" + p.name
}

// scanEntry describes the object at p, already lstat'ed into st.
func scanEntry(p place, rel string, st *unix.Stat_t) (Entry, error) {
	e := Entry{
		Path:    rel,
		Mode:    st.Mode & 07777,
		UID:     st.Uid,
		GID:     st.Gid,
		MtimeNs: st.Mtim.Sec*1e9 + st.Mtim.Nsec,
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		e.Type = Reg
		e.Size = st.Size
		sum, err := fileDigest(p)
		if err != nil {
			return e, err
		}
		e.Digest = sum
	case unix.S_IFDIR:
		e.Type = Dir
	case unix.S_IFLNK:
		e.Type = Symlink
		target, err := os.Readlink(p.path()) // the final name is never followed
		if err != nil {
			return e, err
		}
		e.Link = target
	case unix.S_IFCHR:
		e.Type = Char
	case unix.S_IFBLK:
		e.Type = Block
	case unix.S_IFIFO:
		e.Type = Fifo
	case unix.S_IFSOCK:
		e.Type = Socket
	default:
		return e, fmt.Errorf("%s: unknown file type %#o", p.shown, st.Mode&unix.S_IFMT)
	}
	if e.Type == Char || e.Type == Block {
		e.Devmajor = unix.Major(st.Rdev)
		e.Devminor = unix.Minor(st.Rdev)
	}
	x, err := readXattrs(p)
	if err != nil {
		return e, err
	}
	e.Xattrs = x
	return e, nil
}

func fileDigest(p place) (string, error) {
	fd, err := unix.Openat(p.dirfd, p.name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", &fs.PathError{Op: "open", Path: p.shown, Err: err}
	}
	f := os.NewFile(uintptr(fd), p.shown)
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", p.shown, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// readXattrs returns the extended attributes of p itself (not of a symlink
// target); nil when there are none or the filesystem has no xattr support.
func readXattrs(p place) (map[string]string, error) {
	names, err := listXattrs(p)
	if err != nil || len(names) == 0 {
		return nil, err
	}
	x := make(map[string]string, len(names))
	for _, name := range names {
		v, err := getXattr(p.path(), name)
		if errors.Is(err, unix.ENODATA) {
			continue // removed while we looked
		}
		if err != nil {
			return nil, fmt.Errorf("lgetxattr %s %s: %w", p.shown, name, err)
		}
		x[name] = v
	}
	if len(x) == 0 {
		return nil, nil
	}
	return x, nil
}

func listXattrs(at place) ([]string, error) {
	p := at.path()
	for {
		n, err := unix.Llistxattr(p, nil)
		if errors.Is(err, unix.ENOTSUP) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("llistxattr %s: %w", at.shown, err)
		}
		if n == 0 {
			return nil, nil
		}
		buf := make([]byte, n)
		n, err = unix.Llistxattr(p, buf)
		if errors.Is(err, unix.ERANGE) {
			continue // grew between the two calls
		}
		if err != nil {
			return nil, fmt.Errorf("llistxattr %s: %w", at.shown, err)
		}
		var names []string
		for _, name := range strings.Split(string(buf[:n]), "\x00") {
			if name != "" {
				names = append(names, name)
			}
		}
		return names, nil
	}
}

func getXattr(p, name string) (string, error) {
	for {
		n, err := unix.Lgetxattr(p, name, nil)
		if err != nil {
			return "", err
		}
		if n == 0 {
			return "", nil
		}
		buf := make([]byte, n)
		n, err = unix.Lgetxattr(p, name, buf)
		if errors.Is(err, unix.ERANGE) {
			continue
		}
		if err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	}
}
