package tests

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ocirender/ocirender/internal/imagetest"
	"github.com/ocirender/ocirender/verify"
)

// ocimountBin returns the ocimount binary TestMain built, or fails the test.
func ocimountBin(t testing.TB) string {
	t.Helper()
	ocirenderBin(t) // the binaries built
	return filepath.Join(binDir, "ocimount")
}

// requireFUSE skips unless this process may mount FUSE file systems.
func requireFUSE(t testing.TB) {
	t.Helper()
	requireRoot(t, "mounting FUSE file systems")
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skipf("skipped: no FUSE device: %v", err)
	}
}

// mountTable returns the mount points of /proc/self/mountinfo with their file system types.
func mountTable(t testing.TB) map[string]string {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	mounts := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		for i := 6; i+1 < len(f); i++ {
			if f[i] == "-" {
				p, _ := strconv.Unquote(`"` + strings.ReplaceAll(f[4], `"`, `\"`) + `"`) // octal escapes
				mounts[p] = f[i+1]
				break
			}
		}
	}
	return mounts
}

func isMounted(t testing.TB, mnt string) bool {
	t.Helper()
	_, ok := mountTable(t)[mnt]
	return ok
}

// mountProc is a foreground ocimount serving a mount.
type mountProc struct {
	cmd    *exec.Cmd
	mnt    string
	stderr *syncBuffer
	ready  time.Duration // from start to the ready line
	exited chan struct{}
}

// syncBuffer collects a process's stderr for the test's goroutine to read.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startMount runs `ocimount args... IMAGE MNT` in the foreground and returns once it has
// printed its ready line. The mount is taken down when the test ends, if it is still there.
func startMount(t testing.TB, image, mnt string, args ...string) *mountProc {
	t.Helper()
	cmd := exec.Command(ocimountBin(t), append(args, image, mnt)...)
	pr, pw := io.Pipe()
	m := &mountProc{cmd: cmd, mnt: mnt, stderr: &syncBuffer{}, exited: make(chan struct{})}
	cmd.Stderr = io.MultiWriter(m.stderr, pw)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		cmd.Wait()
		pw.Close()
		close(m.exited)
	}()
	t.Cleanup(func() { m.stop(t) })
	line, err := bufio.NewReader(pr).ReadString('\n')
	go io.Copy(io.Discard, pr)
	if err != nil || !strings.Contains(line, " mounted on ") {
		<-m.exited
		t.Fatalf("ocimount %s: no ready line (%q, %v); exit %d, stderr %q", strings.Join(cmd.Args[1:], " "), line, err, cmd.ProcessState.ExitCode(), m.stderr)
	}
	m.ready = time.Since(start)
	return m
}

// stop unmounts with SIGINT and waits for ocimount to exit; whatever is left is detached.
func (m *mountProc) stop(t testing.TB) {
	select {
	case <-m.exited:
	default:
		m.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-m.exited:
		case <-time.After(20 * time.Second):
			t.Errorf("ocimount did not exit 20 s after SIGINT")
			m.cmd.Process.Kill()
			<-m.exited
		}
	}
	if isMounted(t, m.mnt) {
		unix.Unmount(m.mnt, unix.MNT_DETACH)
	}
}

// TestMountMatchesUmoci mounts the Debian oracle image (tags latest and zstd) and requires
// the mounted tree to equal `umoci unpack` entry for entry, through the kernel: every path,
// type, mode, owner, content digest (every file is read whole), symlink target, device,
// xattr, mtime (ns) and hard-link group (inode numbers). The first mount builds the index
// cache, the second tag's mount loads it.
func TestMountMatchesUmoci(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode: builds and unpacks a Debian image")
	}
	requireFUSE(t)
	requireTools(t, "umoci", "debootstrap", "setfattr", "pigz", "zstd", "bash")
	ocimountBin(t)
	ctx := testContext(t)
	layout := buildDebianImage(t, ctx)
	for _, tc := range []struct{ tag, oracle string }{{"latest", "latest"}, {"zstd", "latest"}} {
		t.Run(tc.tag, func(t *testing.T) {
			want := umociTree(t, ctx, layout, tc.oracle)
			mnt := t.TempDir()
			m := startMount(t, layout, mnt, "--ref", tc.tag)
			start := time.Now()
			got := scan(t, mnt)
			t.Logf("mount ready in %v; scanned %d entries (reading every file) in %v", m.ready.Round(time.Millisecond), len(got), time.Since(start).Round(time.Millisecond))
			var diffs []verify.Difference
			for _, d := range verify.Compare(want, got, verify.Options{}) {
				if !debianNoise(d) {
					diffs = append(diffs, d)
				}
			}
			reportDiffs(t, "ocimount of "+tc.tag, diffs)
			m.stop(t)
			if code := m.cmd.ProcessState.ExitCode(); code != 0 {
				t.Errorf("ocimount after SIGINT: exit %d, want 0; stderr %q", code, m.stderr)
			}
		})
	}
}

// smallImage writes a one-layer image tagged "small".
func smallImage(t *testing.T) string {
	t.Helper()
	image := filepath.Join(t.TempDir(), "small")
	writeImage(t, image, "small", imagetest.GzipBlob(e2e.Layer(
		imagetest.Entry{Name: "etc/", Type: '5'},
		imagetest.Entry{Name: "etc/motd", Body: "hello\n"},
	)))
	return image
}

// TestMountSignals: SIGINT unmounts and exits 0 with nothing on stderr but the ready line;
// with a file open, SIGINT cannot unmount and the second signal detaches the mount.
func TestMountSignals(t *testing.T) {
	requireFUSE(t)
	image := smallImage(t)
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			mnt := t.TempDir()
			m := startMount(t, image, mnt, "--no-cache")
			if b, err := os.ReadFile(filepath.Join(mnt, "etc/motd")); err != nil || string(b) != "hello\n" {
				t.Errorf("etc/motd through the mount = %q, %v", b, err)
			}
			m.cmd.Process.Signal(sig)
			<-m.exited
			if code := m.cmd.ProcessState.ExitCode(); code != 0 {
				t.Errorf("exit %d after %v, want 0; stderr %q", code, sig, m.stderr)
			}
			if want := "ocimount: " + image + " mounted on " + mnt + " (3 entries)\n"; m.stderr.String() != want {
				t.Errorf("stderr = %q, want only %q", m.stderr, want)
			}
			if isMounted(t, mnt) {
				t.Errorf("%s is still mounted after %v", mnt, sig)
			}
		})
	}
	t.Run("busy", func(t *testing.T) {
		mnt := t.TempDir()
		m := startMount(t, image, mnt, "--no-cache")
		f, err := os.Open(filepath.Join(mnt, "etc/motd"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		m.cmd.Process.Signal(syscall.SIGINT)
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(m.stderr.String(), "cannot unmount") && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if !isMounted(t, mnt) {
			t.Fatalf("a busy mount went away on the first signal; stderr %q", m.stderr)
		}
		m.cmd.Process.Signal(syscall.SIGINT)
		<-m.exited
		if code := m.cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(m.stderr.String(), "detached") {
			t.Errorf("after two signals on a busy mount: exit %d, stderr %q; want 1 and a line saying it was detached", code, m.stderr)
		}
		if isMounted(t, mnt) {
			t.Errorf("%s is still mounted after the second signal", mnt)
		}
	})
}

// TestMountDaemon: --daemon returns once the mount is ready, the background process serves
// it, and `ocimount -u` unmounts it, after which the background process exits.
func TestMountDaemon(t *testing.T) {
	requireFUSE(t)
	image := smallImage(t)
	mnt := t.TempDir()
	ctx := testContext(t)
	r := mustRun(t, ctx, ocimountBin(t), "--daemon", "--cache-dir", t.TempDir(), image, mnt)
	t.Cleanup(func() {
		if isMounted(t, mnt) {
			unix.Unmount(mnt, unix.MNT_DETACH)
		}
	})
	line := string(r.stderr)
	var pid int
	if i := strings.LastIndex(line, "process "); i < 0 || strings.Count(line, "\n") != 1 {
		t.Fatalf("--daemon stderr = %q, want one line naming the serving process", line)
	} else {
		pid, _ = strconv.Atoi(strings.TrimSpace(line[i+len("process "):]))
	}
	if fstype := mountTable(t)[mnt]; fstype != "fuse.ocimount" {
		t.Fatalf("after --daemon returned, %s is mounted as %q, want fuse.ocimount", mnt, fstype)
	}
	if b, err := os.ReadFile(filepath.Join(mnt, "etc/motd")); err != nil || string(b) != "hello\n" {
		t.Errorf("etc/motd through the daemon's mount = %q, %v", b, err)
	}
	if sid, err := unix.Getsid(pid); err != nil || sid != pid {
		t.Errorf("the background process %d: session %d, %v; want a session of its own", pid, sid, err)
	}
	mustRun(t, ctx, ocimountBin(t), "-u", mnt)
	if isMounted(t, mnt) {
		t.Errorf("%s is still mounted after ocimount -u", mnt)
	}
	deadline := time.Now().Add(10 * time.Second)
	for syscall.Kill(pid, 0) == nil && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if syscall.Kill(pid, 0) == nil {
		t.Errorf("the background process %d still runs after the unmount", pid)
	}
	r, err := run(ctx, ocimountBin(t), "-u", mnt)
	if err != nil || r.code != 1 || !strings.Contains(string(r.stderr), "is not mounted") {
		t.Errorf("ocimount -u of what is not mounted: %v %v, want exit 1 saying so", err, r)
	}
}

// TestMountErrors: what cannot work fails before mounting, with one line and exit 1 (2 for
// usage errors), and leaves nothing mounted.
func TestMountErrors(t *testing.T) {
	requireFUSE(t)
	image := smallImage(t)
	ctx := testContext(t)
	work := t.TempDir()
	full := filepath.Join(work, "full")
	os.Mkdir(full, 0o755)
	os.WriteFile(filepath.Join(full, "x"), nil, 0o644)
	file := filepath.Join(full, "x")
	corrupt := filepath.Join(work, "corrupt")
	l := writeImage(t, corrupt, "small", imagetest.GzipBlob(e2e.Layer(imagetest.Entry{Name: "a", Body: strings.Repeat("a", 5000)})))
	m, err := l.Manifest("small")
	if err != nil {
		t.Fatal(err)
	}
	blob := l.BlobPath(m.Layers[0].Digest)
	data, _ := os.ReadFile(blob)
	data[len(data)/2] ^= 0xff
	os.WriteFile(blob, data, 0o644)

	bin := ocimountBin(t)
	for _, tc := range []struct {
		name string
		args []string
		code int
		err  string
	}{
		{"missing mountpoint", []string{image, filepath.Join(work, "nope")}, 1, "does not exist"},
		{"mountpoint is a file", []string{image, file}, 1, "is not a directory"},
		{"mountpoint not empty", []string{image, full}, 1, "is not empty"},
		{"missing image", []string{filepath.Join(work, "noimage"), t.TempDir()}, 1, "noimage"},
		{"corrupt layer", []string{"--no-cache", corrupt, t.TempDir()}, 1, "corrupt"},
		{"unknown -o option", []string{"-o", "allow_other,exec", image, t.TempDir()}, 2, `"exec"`},
		// The background process finds this one; the command that started it reports it.
		{"--daemon, corrupt layer", []string{"--daemon", "--no-cache", corrupt, t.TempDir()}, 1, "corrupt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(mountTable(t))
			r, err := run(ctx, bin, tc.args...)
			if err != nil || r.code != tc.code || !strings.Contains(string(r.stderr), tc.err) {
				t.Errorf("ocimount %s: %v %v; want exit %d and %q", strings.Join(tc.args, " "), err, r, tc.code, tc.err)
			}
			if !strings.HasPrefix(string(r.stderr), "ocimount: ") || (tc.code == 1 && strings.Count(string(r.stderr), "\n") != 1) {
				t.Errorf("stderr = %q, want one line starting with 'ocimount: '", r.stderr)
			}
			if n := len(mountTable(t)); n != before {
				t.Errorf("%d mounts before, %d after a failed ocimount", before, n)
			}
		})
	}
	t.Run("no /dev/fuse", func(t *testing.T) {
		requireTools(t, "unshare")
		// In a mount namespace of its own, with an empty /dev.
		r, err := run(ctx, "unshare", "-m", "--propagation", "private", "sh", "-c",
			`mount -t tmpfs none /dev && exec "$0" "$@"`, bin, image, t.TempDir())
		if err != nil || r.code != 1 || !strings.Contains(string(r.stderr), "/dev/fuse is missing") {
			t.Errorf("ocimount without /dev/fuse: %v %v; want exit 1 saying /dev/fuse is missing", err, r)
		}
	})
	t.Run("stale mount", func(t *testing.T) {
		mnt := t.TempDir()
		m := startMount(t, image, mnt, "--no-cache")
		m.cmd.Process.Kill() // the mount stays, with nobody serving it
		<-m.exited
		r, err := run(ctx, bin, image, mnt)
		if err != nil || r.code != 1 || !strings.Contains(string(r.stderr), "ocimount -u") {
			t.Errorf("ocimount on a dead mount: %v %v; want exit 1 suggesting ocimount -u", err, r)
		}
		if r := mustRun(t, ctx, bin, "-u", mnt); len(r.stderr) != 0 {
			t.Errorf("ocimount -u of a dead mount: stderr %q", r.stderr)
		}
		if isMounted(t, mnt) {
			t.Errorf("%s is still mounted after ocimount -u", mnt)
		}
	})
}
