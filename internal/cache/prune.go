package cache

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// The cache grows with every image opened and every blob pulled; nothing in it is needed
// for correctness (a missing index entry or spill file means a scan, a missing blob a
// download), so it can be trimmed at any time. Each use of an entry, spill file or blob
// sets its access time (not its modification time, which the blob stamps record), and
// Prune removes the least recently used first.

// The kinds of files the cache holds, under these directories of it.
var kinds = []struct{ kind, dir string }{
	{"index", "index"},
	{"spill", "spill"},
	{"blobs", filepath.Join("blobs", "sha256")},
}

// Kind is what one kind of cache file takes.
type Kind struct {
	Kind  string // index, spill or blobs
	Files int
	Bytes int64
}

// file is one file of the cache.
type file struct {
	path  string
	size  int64
	used  time.Time // access time
	temp  bool      // a leftover of a write that never finished
	mtime time.Time
}

// tag marks the cache for backup tools (https://bford.info/cachedir/).
const tag = "Signature: 8a477f597d28d172789f06886806bc55\n# This directory holds the cache of ocirender: indexes, spill files and pulled blobs.\n"

// checkDir refuses a directory that holds anything a cache does not: a --cache-dir
// pointing at a home or a project must not have its index/ or blobs/ trimmed.
func checkDir(dir string) error {
	des, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, de := range des {
		switch de.Name() {
		case "index", "spill", "blobs", "CACHEDIR.TAG":
		default:
			return fmt.Errorf("%s holds %s: not an ocirender cache, left alone", dir, de.Name())
		}
	}
	return nil
}

// mark writes the cache directory tag once.
func mark(dir string) {
	p := filepath.Join(dir, "CACHEDIR.TAG")
	if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
		os.WriteFile(p, []byte(tag), 0o644)
	}
}

func list(dir string) ([]file, error) {
	var files []file
	for _, k := range kinds {
		des, err := os.ReadDir(filepath.Join(dir, k.dir))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, de := range des {
			if !de.Type().IsRegular() {
				continue
			}
			fi, err := de.Info()
			if err != nil {
				continue // gone meanwhile
			}
			f := file{path: filepath.Join(dir, k.dir, de.Name()), size: fi.Size(), used: fi.ModTime(),
				temp: strings.HasPrefix(de.Name(), "."), mtime: fi.ModTime()}
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				f.used = time.Unix(st.Atim.Unix())
			}
			files = append(files, f)
		}
	}
	return files, nil
}

// Usage reports the files and bytes of each kind in the cache at dir.
func Usage(dir string) ([]Kind, error) {
	files, err := list(dir)
	if err != nil {
		return nil, err
	}
	out := make([]Kind, len(kinds))
	for i, k := range kinds {
		out[i].Kind = k.kind
		prefix := filepath.Join(dir, k.dir) + string(filepath.Separator)
		for _, f := range files {
			if strings.HasPrefix(f.path, prefix) {
				out[i].Files++
				out[i].Bytes += f.size
			}
		}
	}
	return out, nil
}

// PruneOptions say what Prune removes.
type PruneOptions struct {
	// MaxBytes, when positive, is the size to bring the cache down to, least recently used
	// files first.
	MaxBytes int64
	// OlderThan, when positive, removes every file not used for that long.
	OlderThan time.Duration
	// All removes everything.
	All bool
	// Now is the present (zero: time.Now()).
	Now time.Time
}

// Prune trims the cache at dir as opts say, and always removes the temporary files of
// writes that were interrupted more than a day ago. It returns what it removed. A directory
// that holds anything but index/, spill/, blobs/ and CACHEDIR.TAG is refused.
func Prune(dir string, opts PruneOptions) (files int, bytes int64, err error) {
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	if err := checkDir(dir); err != nil {
		return 0, 0, err
	}
	list, err := list(dir)
	if err != nil {
		return 0, 0, err
	}
	remove := func(f file) {
		if os.Remove(f.path) == nil {
			files++
			bytes += f.size
		}
	}
	var keep []file
	var total int64
	for _, f := range list {
		switch {
		case opts.All,
			f.temp && now.Sub(f.mtime) > 24*time.Hour,
			opts.OlderThan > 0 && now.Sub(f.used) > opts.OlderThan:
			remove(f)
		case f.temp:
			// a write in progress, maybe
		default:
			keep = append(keep, f)
			total += f.size
		}
	}
	if opts.MaxBytes > 0 && total > opts.MaxBytes {
		slices.SortFunc(keep, func(a, b file) int { return cmp.Or(a.used.Compare(b.used), cmp.Compare(a.path, b.path)) })
		for _, f := range keep {
			if total <= opts.MaxBytes {
				break
			}
			remove(f)
			total -= f.size
		}
	}
	return files, bytes, nil
}

// touch records a use of a cache file by setting its access time, leaving its modification
// time (which blob stamps record) as it is. Errors are of no consequence.
func Touch(path string) {
	if fi, err := os.Stat(path); err == nil {
		os.Chtimes(path, time.Now(), fi.ModTime())
	}
}
