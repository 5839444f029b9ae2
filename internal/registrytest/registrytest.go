// Package registrytest runs go-containerregistry's in-process registry on 127.0.0.1 for
// tests, with optional basic auth and a switch that spoils a blob's bytes on the way out, and
// pushes OCI layouts to it. Blob downloads can be throttled to a network's pace.
package registrytest

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Registry is a running test registry.
type Registry struct {
	*httptest.Server
	user, pass string
	// BlobGets counts GET requests of blobs.
	BlobGets atomic.Int32

	mu    sync.Mutex
	spoil string
	how   Spoiling
	rate  int64 // blob bytes per second per request, 0 = unbounded
}

// Throttle makes every blob download run at most bytesPerSecond (0: no bound), as a
// registry across a network would.
func (reg *Registry) Throttle(bytesPerSecond int64) {
	reg.mu.Lock()
	reg.rate = bytesPerSecond
	reg.mu.Unlock()
}

// slowWriter writes at most rate bytes a second.
type slowWriter struct {
	http.ResponseWriter
	rate  int64
	start time.Time
	n     int64
}

func (s *slowWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		chunk := p[:min(len(p), 64<<10)]
		n, err := s.ResponseWriter.Write(chunk)
		written += n
		s.n += int64(n)
		if err != nil {
			return written, err
		}
		p = p[n:]
		if due := s.start.Add(time.Duration(float64(s.n) / float64(s.rate) * float64(time.Second))); time.Until(due) > 0 {
			time.Sleep(time.Until(due))
		}
	}
	return written, nil
}

// New starts a registry, closed when the test ends; with a user, every request must carry
// basic auth for user and pass.
func New(t testing.TB, user, pass string) *Registry {
	return start(t, user, pass, false)
}

// NewToken starts a registry that wants bearer tokens, as Docker Hub does: a request
// without one is sent to the token endpoint /token, which hands one out for basic auth of
// user and pass.
func NewToken(t testing.TB, user, pass string) *Registry {
	return start(t, user, pass, true)
}

// token is the bearer token NewToken's registry hands out and wants.
const token = "t0ken-for-tests"

func start(t testing.TB, user, pass string, bearer bool) *Registry {
	t.Helper()
	reg := &Registry{user: user, pass: pass}
	h := Handler()
	reg.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if bearer && r.URL.Path == "/token" {
			u, p, ok := r.BasicAuth()
			if !ok || u != reg.user || p != reg.pass {
				http.Error(w, "bad credentials", http.StatusUnauthorized)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"token":"`+token+`"}`)
			return
		}
		if bearer {
			if r.Header.Get("Authorization") != "Bearer "+token {
				w.Header().Set("WWW-Authenticate", `Bearer realm="`+reg.URL+`/token",service="test"`)
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
		} else if reg.user != "" {
			u, p, ok := r.BasicAuth()
			if !ok || u != reg.user || p != reg.pass {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
		}
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/sha256:") {
			reg.BlobGets.Add(1)
			reg.mu.Lock()
			spoil, how, rate := reg.spoil, reg.how, reg.rate
			reg.mu.Unlock()
			if rate > 0 {
				w = &slowWriter{ResponseWriter: w, rate: rate, start: time.Now()}
			}
			if spoil != "" && strings.HasSuffix(r.URL.Path, spoil) {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, r)
				b := rec.Body.Bytes()
				switch {
				case how == FlipByte && len(b) > 0:
					b[len(b)/2] ^= 0xff
				case how == ExtraByteChunked:
					b = append(b, 'x')
					rec.Header().Del("Content-Length")
				case how == ExtraByte:
					b = append(b, 'x')
					rec.Header().Set("Content-Length", fmt.Sprint(len(b)))
				}
				for k, v := range rec.Header() {
					w.Header()[k] = v
				}
				w.WriteHeader(rec.Code)
				w.Write(b)
				return
			}
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(reg.Close)
	return reg
}

// Host is the registry's host:port.
func (reg *Registry) Host() string { return strings.TrimPrefix(reg.URL, "http://") }

// Spoiling is how Spoil spoils a blob.
type Spoiling int

const (
	FlipByte         Spoiling = iota // one byte in the middle flipped
	ExtraByte                        // one byte too many, and a Content-Length that says so
	ExtraByteChunked                 // one byte too many, no Content-Length
)

// Spoil makes the registry serve the blob of digest hex hx with one byte flipped ("" stops).
func (reg *Registry) Spoil(hx string) { reg.SpoilHow(hx, FlipByte) }

// SpoilHow makes the registry serve the blob of digest hex hx spoiled as how says.
func (reg *Registry) SpoilHow(hx string, how Spoiling) {
	reg.mu.Lock()
	reg.spoil, reg.how = hx, how
	reg.mu.Unlock()
}

// Push uploads the image of the OCI layout dir whose ref name is ref ("" for the first
// image) as repo (repo:tag) and returns its reference.
func (reg *Registry) Push(t testing.TB, dir, ref, repo string) string {
	t.Helper()
	var auth authn.Authenticator = authn.Anonymous
	if reg.user != "" {
		auth = &authn.Basic{Username: reg.user, Password: reg.pass}
	}
	dst, err := PushLayout(reg.Host(), auth, dir, ref, repo)
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// Handler returns go-containerregistry's in-process registry, logging nothing.
func Handler() http.Handler { return registry.New(registry.Logger(log.New(io.Discard, "", 0))) }

// PushLayout uploads the image of the OCI layout dir whose ref name is ref ("" for the
// first image) to the registry at host as repo (repo:tag) and returns its reference.
func PushLayout(host string, auth authn.Authenticator, dir, ref, repo string) (string, error) {
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return "", err
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return "", err
	}
	pick := -1
	for i, d := range m.Manifests {
		if ref == "" || d.Annotations["org.opencontainers.image.ref.name"] == ref {
			pick = i
			break
		}
	}
	if pick < 0 {
		return "", fmt.Errorf("%s has no image %q", dir, ref)
	}
	img, err := idx.Image(m.Manifests[pick].Digest)
	if err != nil {
		return "", err
	}
	dst := host + "/" + repo
	r, err := name.ParseReference(dst)
	if err != nil {
		return "", err
	}
	if err := remote.Write(r, img, remote.WithAuth(auth)); err != nil {
		return "", err
	}
	return dst, nil
}
