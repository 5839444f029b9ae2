package image

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
)

// Bounds on what an archive may hold, so a hostile one cannot make us
// allocate without limit or chase links forever.
const (
	maxArchiveMembers = 1 << 20
	maxLinkHops       = 40
)

type memberKind uint8

const (
	kindFile    memberKind = iota // data at [off, off+size)
	kindSymlink                   // target relative to the member's directory
	kindHard                      // target relative to the archive root
	kindOther                     // directory, device, sparse file...: no usable data
)

type archiveMember struct {
	kind      memberKind
	off, size int64
	target    string // clean, root-relative, for links
}

// archiveStore is a layout packed in a tar archive and read in place. The
// archive's headers are parsed once by openArchiveStore; a member is then a
// span of the archive file.
//
// Member names are cleaned like paths (see cleanName); a name that escapes
// the archive root makes the whole archive invalid. When a name occurs more
// than once the last member wins, as it would for `tar -x` followed by
// reading the directory. Symbolic and hard links between members are
// followed (docker save writes symlinks for layers shared between images);
// a symlink's absolute target is taken relative to the archive root.
// Sparse members are not usable: their data is not one span.
type archiveStore struct {
	f       *os.File
	size    int64
	members map[string]archiveMember
}

// offsetReader tracks the position of the archive reader, so the offset of a
// member's data is known right after tar.Reader.Next returns its header.
type offsetReader struct {
	f   *os.File
	pos int64
}

func (r *offsetReader) Read(p []byte) (int, error) {
	n, err := r.f.Read(p)
	r.pos += int64(n)
	return n, err
}

func (r *offsetReader) Seek(off int64, whence int) (int64, error) {
	pos, err := r.f.Seek(off, whence)
	if err == nil {
		r.pos = pos
	}
	return pos, err
}

// compressedMagic names the compression of an archive that starts with one
// of these byte strings.
var compressedMagic = []struct {
	magic []byte
	name  string
}{
	{[]byte{0x1f, 0x8b}, "gzip"},
	{[]byte{0x28, 0xb5, 0x2f, 0xfd}, "zstd"},
	{[]byte("BZh"), "bzip2"},
	{[]byte{0xfd, '7', 'z', 'X', 'Z', 0}, "xz"},
}

// compression returns the name of the compression head starts with, or "".
func compression(head []byte) string {
	for _, c := range compressedMagic {
		if bytes.HasPrefix(head, c.magic) {
			return c.name
		}
	}
	return ""
}

// openArchiveStore parses the headers of the tar archive in f. It takes
// ownership of f: on error f is closed.
func openArchiveStore(f *os.File) (_ *archiveStore, err error) {
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	head := make([]byte, 8)
	n, _ := f.ReadAt(head, 0)
	if c := compression(head[:n]); c != "" {
		return nil, errorf(ErrUnsupported, "%s-compressed archive: decompress it first (archives are read in place)", c)
	}
	s := &archiveStore{f: f, size: fi.Size(), members: make(map[string]archiveMember)}
	or := &offsetReader{f: f}
	tr := tar.NewReader(or)
	count := 0
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, errorf(ErrInvalid, "bad tar archive after %d members: %v", count, err)
		}
		if count++; count > maxArchiveMembers {
			return nil, errorf(ErrInvalid, "bad tar archive: more than %d members", maxArchiveMembers)
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		if strings.Trim(hdr.Name, "./") == "" && !strings.Contains(hdr.Name, "..") {
			continue // the root itself, "./" of tar -C dir -c .
		}
		name, err := cleanName(hdr.Name)
		if err != nil {
			return nil, fmt.Errorf("archive member %w", err)
		}
		m := archiveMember{kind: kindOther}
		switch hdr.Typeflag {
		case tar.TypeReg:
			if isSparse(hdr) {
				break
			}
			m = archiveMember{kind: kindFile, off: or.pos, size: hdr.Size}
			if m.off > s.size || m.size > s.size-m.off {
				return nil, errorf(ErrInvalid, "bad tar archive: member %q is truncated", name)
			}
		case tar.TypeSymlink:
			m.kind = kindSymlink
			m.target = hdr.Linkname
		case tar.TypeLink:
			m.kind = kindHard
			m.target = hdr.Linkname
		}
		s.members[name] = m
	}
	return s, nil
}

func isSparse(hdr *tar.Header) bool {
	if hdr.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

func (s *archiveStore) open(name string) (member, error) {
	if s.members == nil {
		return member{}, os.ErrClosed
	}
	cur := name
	for hops := 0; ; hops++ {
		m, ok := s.members[cur]
		if !ok {
			if cur != name {
				return member{}, errorf(ErrNotFound, "%s: missing (link to %s)", name, cur)
			}
			return member{}, errorf(ErrNotFound, "%s: missing", name)
		}
		if hops > maxLinkHops {
			return member{}, errorf(ErrInvalid, "%s: more than %d links", name, maxLinkHops)
		}
		switch m.kind {
		case kindFile:
			return member{f: s.f, off: m.off, size: m.size}, nil
		case kindOther:
			return member{}, errorf(ErrInvalid, "%s: not a regular file", name)
		}
		target := m.target
		if m.kind == kindSymlink && !strings.HasPrefix(target, "/") {
			target = path.Join(path.Dir(cur), target)
		}
		next, err := cleanName(target)
		if err != nil {
			return member{}, fmt.Errorf("%s: link %w", name, err)
		}
		cur = next
	}
}

func (s *archiveStore) close() error {
	if s.members == nil {
		return nil
	}
	s.members = nil
	return s.f.Close()
}
