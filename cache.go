package ocirender

import "github.com/ocirender/ocirender/internal/cache"

// The index cache (Options.CacheDir) keeps what a scan learns about an image, so that the
// next Open of the same image skips the scan: the merged index and every layer's map of
// places where decoding can resume, checked before use and rebuilt when stale or corrupt.
// Nothing in it is needed for correctness, so it can be trimmed at any time.

// DefaultCacheDir returns $XDG_CACHE_HOME/ocirender, or ~/.cache/ocirender.
func DefaultCacheDir() (string, error) { return cache.DefaultDir() }

// CacheKind is what one kind of cache file (index, spill or blobs) takes.
type CacheKind = cache.Kind

// PruneOptions say what PruneCache removes.
type PruneOptions = cache.PruneOptions

// CacheUsage reports the files and bytes of each kind in the cache at dir.
func CacheUsage(dir string) ([]CacheKind, error) { return cache.Usage(dir) }

// PruneCache trims the cache at dir as opts say (least recently used first), and always
// removes the temporary files of writes that were interrupted more than a day ago. It
// returns what it removed. A directory that holds anything but a cache's own is refused.
func PruneCache(dir string, opts PruneOptions) (files int, bytes int64, err error) {
	return cache.Prune(dir, opts)
}
