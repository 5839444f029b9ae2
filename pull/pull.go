// Package pull fetches images from registries. It resolves a reference to the manifest of one
// platform and downloads the layer blobs into a blob directory shared between pulls, several
// at once, newest layer first, each verified against its digest before it takes its name
// there. It owns the registry side only: what becomes of the blobs is the caller's business
// (ocirender.Pull feeds them to a Packer as they complete).
//
// Registry access is go-containerregistry's remote client: credentials come from
// ~/.docker/config.json (or $DOCKER_CONFIG) and its credential helpers, bearer tokens are
// fetched as registries ask for them, and Insecure allows plain HTTP (loopback and
// private-network registries get it without asking).
package pull

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/ocirender/ocirender/image"
	"github.com/opencontainers/go-digest"
)

// Options tune Resolve and Fetch.
type Options struct {
	// Platform is "os/arch[/variant]" to pick from an image index; "" is linux and the
	// host's architecture.
	Platform string
	// Insecure lets the registry be reached over plain HTTP.
	Insecure bool
	// Jobs is the number of layers downloaded at once; 0 means 4.
	Jobs int
	// BlobDir holds the blobs, as BlobDir/sha256/<hex>; blobs already there are not fetched
	// again. "" is a temporary directory that Remote.Close removes (files opened from it
	// stay readable).
	BlobDir string
	// Keychain finds credentials; nil is authn.DefaultKeychain.
	Keychain authn.Keychain
	// Transport, when set, carries the requests (tests, proxies).
	Transport http.RoundTripper
	// Progress, when set, hears of each layer's download: done of total bytes. Calls come
	// from several goroutines; a layer already at hand reports done = total at once.
	Progress func(layer int, done, total int64)
}

// Remote is an image resolved in its registry: its manifest and config, read and verified,
// and its layer descriptors, base first.
type Remote struct {
	Ref      name.Reference
	Manifest []byte
	Config   []byte
	Layers   []v1.Descriptor
	// Progress hears of each layer's download (from Options.Progress; may be changed
	// before Fetch).
	Progress func(layer int, done, total int64)

	opts   Options
	puller *remote.Puller
	tmp    string // a temporary BlobDir, removed by Close
}

// Close removes the temporary blob directory, if Options.BlobDir was "".
func (r *Remote) Close() error {
	if r.tmp == "" {
		return nil
	}
	return os.RemoveAll(r.tmp)
}

// Resolve looks ref up ("registry/repo:tag" or "@sha256:..."; docker.io is the default
// registry) and reads the manifest of the wanted platform and its config.
func Resolve(ctx context.Context, ref string, opts Options) (*Remote, error) {
	var nopts []name.Option
	if opts.Insecure {
		nopts = append(nopts, name.Insecure)
	}
	r, err := name.ParseReference(ref, nopts...)
	if err != nil {
		return nil, fmt.Errorf("pull: %q is not an image reference: %w", ref, err)
	}
	plat, err := parsePlatform(opts.Platform)
	if err != nil {
		return nil, fmt.Errorf("pull: %w", err)
	}
	kc := opts.Keychain
	if kc == nil {
		kc = authn.DefaultKeychain
	}
	ropts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(kc), remote.WithPlatform(plat),
		remote.WithUserAgent("ocirender")}
	if opts.Transport != nil {
		ropts = append(ropts, remote.WithTransport(opts.Transport))
	}
	p, err := remote.NewPuller(ropts...)
	if err != nil {
		return nil, fmt.Errorf("pull: %w", err)
	}
	desc, err := p.Get(ctx, r)
	if err != nil {
		var te *transport.Error
		if errors.As(err, &te) && te.StatusCode == http.StatusUnauthorized {
			return nil, fmt.Errorf("pull: %s: %w (log in with docker login, or put credentials in $DOCKER_CONFIG/config.json)", r, oneLine(err))
		}
		return nil, fmt.Errorf("pull: %s: %w", r, oneLine(err))
	}
	img, err := desc.Image()
	if err != nil {
		return nil, fmt.Errorf("pull: %s: %w", r, oneLine(err))
	}
	rm := &Remote{Ref: r, Progress: opts.Progress, opts: opts, puller: p}
	if rm.Manifest, err = img.RawManifest(); err != nil {
		return nil, fmt.Errorf("pull: %s: manifest: %w", r, oneLine(err))
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, fmt.Errorf("pull: %s: manifest: %w", r, oneLine(err))
	}
	if m.Config.Size > 4<<20 || m.Config.Size < 0 {
		return nil, fmt.Errorf("pull: %s: a config of %d bytes", r, m.Config.Size)
	}
	if rm.Config, err = img.RawConfigFile(); err != nil {
		return nil, fmt.Errorf("pull: %s: config: %w", r, oneLine(err))
	}
	for i, l := range m.Layers {
		if _, err := digest.Parse(l.Digest.String()); err != nil || l.Digest.Algorithm != "sha256" {
			return nil, fmt.Errorf("pull: %s: layer %d: bad digest %.80q", r, i, l.Digest)
		}
		if l.Size < 0 {
			return nil, fmt.Errorf("pull: %s: layer %d: size %d", r, i, l.Size)
		}
		if !l.MediaType.IsDistributable() && len(l.URLs) > 0 {
			return nil, fmt.Errorf("pull: %s: layer %d is a foreign layer (%s), not in the registry", r, i, l.MediaType)
		}
	}
	rm.Layers = m.Layers
	if opts.BlobDir == "" {
		if rm.opts.BlobDir, err = os.MkdirTemp("", "ocirender-blobs-"); err != nil {
			return nil, fmt.Errorf("pull: %w", err)
		}
		rm.tmp = rm.opts.BlobDir
	}
	return rm, nil
}

// String is the reference, for messages.
func (r *Remote) String() string { return r.Ref.String() }

// BlobPath is where layer i's blob is kept.
func (r *Remote) BlobPath(i int) string {
	return filepath.Join(r.opts.BlobDir, "sha256", r.Layers[i].Digest.Hex)
}

// Have reports whether layer i's blob is already in the blob directory with its size (its
// digest was checked when it was stored there, and is checked again whenever it is read),
// and records the use in its access time.
func (r *Remote) Have(i int) bool {
	fi, err := os.Stat(r.BlobPath(i))
	if err != nil || !fi.Mode().IsRegular() || fi.Size() != r.Layers[i].Size {
		return false
	}
	// A use: cache pruning goes by access time. The modification time stays, as the index
	// cache's blob stamps record it.
	os.Chtimes(r.BlobPath(i), time.Now(), fi.ModTime())
	return true
}

// DropCorrupt hashes the blobs of r's layers already in the blob directory and removes those
// whose bytes are not what their digest says (a disk error, a hand edit), so that the next
// Fetch downloads them again. It returns how many it removed.
func (r *Remote) DropCorrupt() (int, error) {
	n := 0
	seen := make(map[v1.Hash]bool)
	for i, l := range r.Layers {
		if seen[l.Digest] || !r.Have(i) {
			continue
		}
		seen[l.Digest] = true
		f, err := os.Open(r.BlobPath(i))
		if err != nil {
			return n, err
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return n, err
		}
		if hex.EncodeToString(h.Sum(nil)) != l.Digest.Hex {
			if err := os.Remove(r.BlobPath(i)); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}

// Fetch downloads every layer not already in the blob directory, Options.Jobs at once, the
// newest (last) layer first, and calls ready with each layer's blob path as soon as it is
// complete and verified (at once for the layers already there). With arriving set, it is
// called when a download starts, with a reader of the blob's bytes as they arrive (it blocks
// for more, fails if the download fails, and ends at the blob's end), so the caller can
// consume a layer while it downloads; ready follows once the blob is complete. Calls come
// from several goroutines. Fetch stops at the first error, of a download or of a callback.
func (r *Remote) Fetch(ctx context.Context, ready func(i int, path string) error, arriving func(i int, blob io.Reader) error) error {
	progress := r.Progress
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	jobs := r.opts.Jobs
	if jobs <= 0 {
		jobs = 4
	}
	var (
		wg   sync.WaitGroup
		sem  = make(chan struct{}, jobs)
		once sync.Once
		ferr error
	)
	fail := func(err error) {
		once.Do(func() { ferr = err; cancel(err) })
	}
	// A digest that appears twice is downloaded once; its later layers wait for it.
	first := make(map[v1.Hash]chan struct{})
	for i := len(r.Layers) - 1; i >= 0; i-- {
		d := r.Layers[i].Digest
		if done, ok := first[d]; ok {
			wg.Go(func() {
				select {
				case <-done:
					if ctx.Err() == nil {
						if err := ready(i, r.BlobPath(i)); err != nil {
							fail(err)
						}
					}
				case <-ctx.Done():
				}
			})
			continue
		}
		done := make(chan struct{})
		first[d] = done
		wg.Go(func() {
			defer close(done)
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-sem }()
			if !r.Have(i) {
				if err := r.download(ctx, i, arriving); err != nil {
					fail(err)
					return
				}
			} else if progress != nil {
				progress(i, r.Layers[i].Size, r.Layers[i].Size)
			}
			if ctx.Err() != nil {
				return
			}
			if err := ready(i, r.BlobPath(i)); err != nil {
				fail(err)
			}
		})
	}
	wg.Wait()
	if ferr == nil && ctx.Err() != nil {
		ferr = context.Cause(ctx)
	}
	return ferr
}

// download fetches layer i into a temporary file of the blob directory, checks its size and
// digest, and renames it into place.
func (r *Remote) download(ctx context.Context, i int, arriving func(int, io.Reader) error) (err error) {
	l := r.Layers[i]
	what := fmt.Sprintf("pull: %s: layer %d (%s)", r.Ref, i, l.Digest)
	dst := r.BlobPath(i)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	layer, err := r.puller.Layer(ctx, r.Ref.Context().Digest(l.Digest.String()))
	if err != nil {
		return fmt.Errorf("%s: %w", what, oneLine(err))
	}
	rc, err := layer.Compressed()
	if err != nil {
		return fmt.Errorf("%s: %w", what, oneLine(err))
	}
	defer rc.Close()
	f, err := os.CreateTemp(filepath.Dir(dst), ".tmp-*")
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	var g *growing
	if arriving != nil {
		if g, err = newGrowing(f.Name()); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		defer func() { g.finish(err) }()
		if err := arriving(i, g); err != nil {
			g.Close()
			return err
		}
	}
	pw := &progressWriter{w: f, i: i, total: l.Size, progress: r.Progress, grown: g}
	// The remote layer's reader hashes what it reads and fails at its end when the digest or
	// the Content-Length differs, so a blob is verified as it is copied, once; a scan
	// reading it verifies it again independently. At most one byte more than declared is
	// read: enough to tell a blob that is too long.
	n, err := io.Copy(pw, io.LimitReader(rc, l.Size+1))
	if err != nil {
		return fmt.Errorf("%s: %w", what, oneLine(digestError(err)))
	}
	if n != l.Size {
		return fmt.Errorf("%s: %d bytes, want %d", what, n, l.Size)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := os.Rename(f.Name(), dst); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// digestError words go-containerregistry's own verification failure as ours.
func digestError(err error) error {
	if strings.Contains(err.Error(), "error verifying") || strings.Contains(err.Error(), "checksum") {
		return fmt.Errorf("digest mismatch: %w", err)
	}
	return err
}

// progressWriter counts the bytes of a download on their way to its file.
type progressWriter struct {
	w        io.Writer
	i        int
	done     int64
	total    int64
	progress func(i int, done, total int64)
	grown    *growing // told of every write, when the download is being read as it arrives
}

func (p *progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.done += int64(n)
	if p.grown != nil {
		p.grown.grew(p.done)
	}
	if p.progress != nil {
		p.progress(p.i, p.done, p.total)
	}
	return n, err
}

// growing reads a file while a download writes it: Read returns what has been written,
// waits for more, and ends (io.EOF) once the download has finished and been verified, or
// fails with the download's error. It reads through a descriptor of its own, so the file may
// be renamed or removed meanwhile. Close releases the descriptor and makes a waiting Read
// return; the download goes on.
type growing struct {
	f         *os.File
	off       int64
	mu        sync.Mutex
	cond      sync.Cond
	size      int64 // bytes written so far
	done      bool
	err       error
	closed    bool
	closeOnce sync.Once
}

var errReaderClosed = errors.New("pull: reader of a download closed")

// Close releases the reader; a Read waiting for bytes returns an error.
func (g *growing) Close() error {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	g.cond.Broadcast()
	g.closeOnce.Do(func() { g.f.Close() })
	return nil
}

func newGrowing(path string) (*growing, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	g := &growing{f: f}
	g.cond.L = &g.mu
	return g, nil
}

// grew says that the file now holds size bytes.
func (g *growing) grew(size int64) {
	g.mu.Lock()
	g.size = size
	g.mu.Unlock()
	g.cond.Broadcast()
}

// finish says that the download ended, with err if it failed.
func (g *growing) finish(err error) {
	g.mu.Lock()
	if !g.done {
		g.done, g.err = true, err
	}
	g.mu.Unlock()
	g.cond.Broadcast()
}

func (g *growing) Read(p []byte) (int, error) {
	g.mu.Lock()
	for g.off >= g.size && !g.done && !g.closed {
		g.cond.Wait()
	}
	size, done, err, closed := g.size, g.done, g.err, g.closed
	g.mu.Unlock()
	switch {
	case done && err != nil:
		// The download's failure, on every Read: it closes the reader, and a reader that
		// reads again after an error (bufio does) must not see "closed" instead.
		g.Close()
		return 0, err
	case closed:
		return 0, errReaderClosed
	case g.off >= size: // done, all read
		g.Close()
		return 0, io.EOF
	}
	n, rerr := g.f.ReadAt(p[:min(int64(len(p)), size-g.off)], g.off)
	g.off += int64(n)
	if rerr == io.EOF && n > 0 {
		rerr = nil
	}
	return n, rerr
}

// parsePlatform reads "os/arch[/variant]" as image.ParsePlatform does; "" is linux and the
// host's architecture (registries serve linux images, whatever the host).
func parsePlatform(s string) (v1.Platform, error) {
	if s == "" {
		s = "linux/" + runtime.GOARCH
	}
	p, err := image.ParsePlatform(s)
	if err != nil {
		return v1.Platform{}, err
	}
	return v1.Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant}, nil
}

// oneLine keeps the first line of a registry error (they can carry a response body).
func oneLine(err error) error {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return fmt.Errorf("%s", s[:i])
	}
	return err
}

// WriteLayout fetches every layer and writes the image as an OCI image layout in the new
// directory dir (its index.json names the image by its tag), through a temporary directory
// renamed at the end.
func (r *Remote) WriteLayout(ctx context.Context, dir string) (err error) {
	if _, err := os.Lstat(dir); err == nil {
		return fmt.Errorf("pull: %s exists", dir)
	}
	// The blobs are copied as they are: check those already at hand first.
	if _, err := r.DropCorrupt(); err != nil {
		return fmt.Errorf("pull: %w", err)
	}
	if err := r.Fetch(ctx, func(int, string) error { return nil }, nil); err != nil {
		return err
	}
	parent, base := filepath.Split(filepath.Clean(dir))
	if parent == "" {
		parent = "."
	}
	tmp, err := os.MkdirTemp(parent, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("pull: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	blobs := filepath.Join(tmp, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		return fmt.Errorf("pull: %w", err)
	}
	put := func(data []byte) (digest.Digest, error) {
		d := digest.FromBytes(data)
		return d, os.WriteFile(filepath.Join(blobs, d.Encoded()), data, 0o644)
	}
	md, err := put(r.Manifest)
	if err != nil {
		return fmt.Errorf("pull: %w", err)
	}
	if _, err := put(r.Config); err != nil {
		return fmt.Errorf("pull: %w", err)
	}
	for i, l := range r.Layers {
		dst := filepath.Join(blobs, l.Digest.Hex)
		if _, err := os.Stat(dst); err == nil {
			continue // a digest that appears twice
		}
		if err := copyFile(r.BlobPath(i), dst); err != nil {
			return fmt.Errorf("pull: layer %d: %w", i, err)
		}
	}
	mt := string(types.OCIManifestSchema1)
	if m, err := v1.ParseManifest(strings.NewReader(string(r.Manifest))); err == nil && m.MediaType != "" {
		mt = string(m.MediaType)
	}
	desc := map[string]any{"mediaType": mt, "digest": md, "size": len(r.Manifest)}
	if t, ok := r.Ref.(name.Tag); ok {
		desc["annotations"] = map[string]string{"org.opencontainers.image.ref.name": t.TagStr()}
	}
	idx, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": string(types.OCIImageIndex), "manifests": []any{desc}})
	if err := os.WriteFile(filepath.Join(tmp, "index.json"), idx, 0o644); err != nil {
		return fmt.Errorf("pull: %w", err)
	}
	if err := os.WriteFile(filepath.Join(tmp, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
		return fmt.Errorf("pull: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("pull: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("pull: %w", err)
	}
	return nil
}

// copyFile copies src to the new file dst (in the kernel where it can: io.Copy between files
// uses copy_file_range).
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
