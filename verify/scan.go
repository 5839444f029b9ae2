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
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// ScanDir walks the tree at root with lstat, never following symlinks, and
// returns one Entry per path (the root included, with Path ""), sorted
// bytewise by Path. It reads every regular file to compute its digest.
//
// root must be a directory; a symlink to a directory is refused, so that the
// scanned tree is exactly the one on disk.
func ScanDir(root string) ([]Entry, error) {
	fi, err := os.Lstat(root)
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", root, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("scan %s: not a directory", root)
	}

	type inodeKey struct{ dev, ino uint64 }
	groups := make(map[inodeKey][]int)
	var entries []Entry

	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		if rel == "." {
			rel = ""
		}
		rel = filepath.ToSlash(rel)

		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return &fs.PathError{Op: "lstat", Path: p, Err: err}
		}
		e, err := scanEntry(p, rel, &st)
		if err != nil {
			return err
		}
		if e.Type != Dir && st.Nlink > 1 {
			k := inodeKey{uint64(st.Dev), st.Ino}
			groups[k] = append(groups[k], len(entries))
		}
		entries = append(entries, e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", root, err)
	}

	nameLinkGroups(groups, func(i int) *Entry { return &entries[i] })
	sort.Slice(entries, func(i, j int) bool { return entries[i].Path < entries[j].Path })
	return entries, nil
}

// scanEntry describes the object at p, already lstat'ed into st.
func scanEntry(p, rel string, st *unix.Stat_t) (Entry, error) {
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
		target, err := os.Readlink(p)
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
		return e, fmt.Errorf("%s: unknown file type %#o", p, st.Mode&unix.S_IFMT)
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

func fileDigest(p string) (string, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", p, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// readXattrs returns the extended attributes of p itself (not of a symlink
// target); nil when there are none or the filesystem has no xattr support.
func readXattrs(p string) (map[string]string, error) {
	names, err := listXattrs(p)
	if err != nil || len(names) == 0 {
		return nil, err
	}
	x := make(map[string]string, len(names))
	for _, name := range names {
		v, err := getXattr(p, name)
		if errors.Is(err, unix.ENODATA) {
			continue // removed while we looked
		}
		if err != nil {
			return nil, fmt.Errorf("lgetxattr %s %s: %w", p, name, err)
		}
		x[name] = v
	}
	if len(x) == 0 {
		return nil, nil
	}
	return x, nil
}

func listXattrs(p string) ([]string, error) {
	for {
		n, err := unix.Llistxattr(p, nil)
		if errors.Is(err, unix.ENOTSUP) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("llistxattr %s: %w", p, err)
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
			return nil, fmt.Errorf("llistxattr %s: %w", p, err)
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
