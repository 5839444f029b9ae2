package imagetest

import (
	"archive/tar"
	"bytes"
	"fmt"
	"time"
)

// Epoch is the mtime of entries that set none, unless [Options] name another.
var Epoch = time.Unix(1700000000, 0)

// Options are the defaults a layer gives the fields its entries leave zero. The zero value
// gives the package's defaults: mtime [Epoch], mode 0755 for directories and 0644 for every
// other type, symlinks included.
type Options struct {
	// Mtime of entries that set none; zero means Epoch.
	Mtime time.Time
	// SymlinkMode of symlinks that set no mode; zero means 0644, as for files.
	SymlinkMode int64
}

// Layer returns the uncompressed tar stream of entries, in order, with the end-of-archive
// marker, with the defaults of the zero [Options]. It panics when archive/tar refuses an
// entry: the entries are a test's own table.
func Layer(entries ...Entry) []byte { return Options{}.Layer(entries...) }

// Layer is [Layer] with o's defaults.
func (o Options) Layer(entries ...Entry) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := o.header(e)
		if err := tw.WriteHeader(hdr); err != nil {
			panic(fmt.Sprintf("imagetest: entry %q: %v", e.Name, err))
		}
		if hdr.Size > 0 {
			if _, err := tw.Write([]byte(e.Body)); err != nil {
				panic(fmt.Sprintf("imagetest: entry %q: %v", e.Name, err))
			}
		}
	}
	if err := tw.Close(); err != nil {
		panic(fmt.Sprintf("imagetest: %v", err))
	}
	return buf.Bytes()
}

func (o Options) header(e Entry) *tar.Header {
	hdr := &tar.Header{
		Typeflag: e.Type, Name: e.Name, Linkname: e.Link, Mode: e.Mode, Uid: e.UID, Gid: e.GID,
		ModTime: e.Mtime, Devmajor: e.Devmajor, Devminor: e.Devminor, Format: e.Format,
	}
	if hdr.Typeflag == 0 {
		hdr.Typeflag = tar.TypeReg
	}
	if hdr.Typeflag == tar.TypeReg {
		hdr.Size = int64(len(e.Body))
	}
	switch {
	case hdr.Mode == NoPerm:
		hdr.Mode = 0
	case hdr.Mode != 0:
	case hdr.Typeflag == tar.TypeDir:
		hdr.Mode = 0o755
	case hdr.Typeflag == tar.TypeSymlink && o.SymlinkMode != 0:
		hdr.Mode = o.SymlinkMode
	default:
		hdr.Mode = 0o644
	}
	if hdr.ModTime.IsZero() {
		hdr.ModTime = o.Mtime
		if hdr.ModTime.IsZero() {
			hdr.ModTime = Epoch
		}
	}
	if hdr.Format == 0 {
		hdr.Format = tar.FormatPAX
	}
	if len(e.Xattrs) > 0 || len(e.PAX) > 0 {
		hdr.PAXRecords = make(map[string]string, len(e.Xattrs)+len(e.PAX))
		for k, v := range e.Xattrs {
			hdr.PAXRecords["SCHILY.xattr."+k] = v
		}
		for k, v := range e.PAX {
			hdr.PAXRecords[k] = v
		}
	}
	return hdr
}
