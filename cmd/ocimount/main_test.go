package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ocirender/ocirender/internal/imagetest"
)

func sample(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "img")
	layer := imagetest.Layer(imagetest.Dir("etc"), imagetest.Reg("etc/motd", "hi\n"), imagetest.Sym("link", "etc/motd"))
	if _, err := imagetest.WriteLayout(dir, "s", imagetest.GzipBlob(layer)); err != nil {
		t.Fatal(err)
	}
	return dir
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader on different goroutines.
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

func newCommand(signals chan os.Signal) (*command, *syncBuffer, *syncBuffer) {
	out, errOut := &syncBuffer{}, &syncBuffer{}
	return &command{stdout: out, stderr: errOut, signals: signals, devFuse: "/dev/fuse"}, out, errOut
}

func TestRunErrors(t *testing.T) {
	img := sample(t)
	empty := t.TempDir()
	full := t.TempDir()
	os.WriteFile(filepath.Join(full, "x"), nil, 0o644)
	file := filepath.Join(full, "x")
	missing := filepath.Join(empty, "nope")
	for _, tc := range []struct {
		name    string
		args    []string
		devFuse string
		code    int
		err     string // substring of stderr
	}{
		{"no arguments", nil, "", 2, "want IMAGE MOUNTPOINT"},
		{"one argument", []string{img}, "", 2, "want IMAGE MOUNTPOINT"},
		{"unknown flag", []string{"--frob", img, empty}, "", 2, "unknown flag"},
		{"unknown -o option", []string{"-o", "allow_other,rw", img, empty}, "", 2, `unknown mount option "rw"`},
		{"-u without mountpoint", []string{"-u"}, "", 2, "-u: want MOUNTPOINT"},
		{"--debug with --daemon", []string{"--debug", "--daemon", img, empty}, "", 2, "--daemon"},
		{"missing mountpoint", []string{img, missing}, "", 1, "mountpoint " + missing + " does not exist"},
		{"mountpoint is a file", []string{img, file}, "", 1, "is not a directory"},
		{"mountpoint not empty", []string{img, full}, "", 1, "mountpoint " + full + " is not empty"},
		{"no /dev/fuse", []string{img, empty}, missing, 1, missing + " is missing"},
		{"/dev/fuse not a device", []string{img, empty}, file, 1, "is not a character device"},
		{"bad image", []string{filepath.Join(empty, "noimage"), empty}, "", 1, "noimage"},
		{"unmount what is not mounted", []string{"-u", empty}, "", 1, empty + " is not mounted"},
		{"unmount a mount of another kind", []string{"-u", "/proc"}, "", 1, "is a proc mount, not an ocimount one"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _, errOut := newCommand(nil)
			if tc.devFuse != "" {
				c.devFuse = tc.devFuse
			}
			if tc.name == "bad image" {
				if _, err := os.Stat("/dev/fuse"); err != nil {
					t.Skip("skipped: no /dev/fuse, and the device is checked before the image")
				}
			}
			code := report(c.run(context.Background(), tc.args), errOut)
			if code != tc.code {
				t.Errorf("exit %d, want %d; stderr %q", code, tc.code, errOut)
			}
			if !strings.Contains(errOut.String(), tc.err) {
				t.Errorf("stderr = %q, want it to contain %q", errOut, tc.err)
			}
			if first, _, _ := strings.Cut(errOut.String(), "\n"); !strings.HasPrefix(first, "ocimount: ") {
				t.Errorf("stderr = %q, want a line starting with 'ocimount: '", errOut)
			}
			if tc.code == 1 && strings.Count(errOut.String(), "\n") != 1 {
				t.Errorf("stderr = %q, want one line", errOut)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	c, out, errOut := newCommand(nil)
	if code := report(c.run(context.Background(), []string{"--help"}), errOut); code != 0 {
		t.Fatalf("--help: exit %d", code)
	}
	for _, want := range []string{"ocimount [flags] IMAGE MOUNTPOINT", "ocimount -u MOUNTPOINT", "--ref", "--platform", "--cache-dir", "--no-cache", "--daemon", "--options", "--debug", "--quiet", "--unmount"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--help lacks %q:\n%s", want, out)
		}
	}
}

func TestParseMountinfo(t *testing.T) {
	const table = `22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
36 22 0:39 / /tmp/a\040b\134c ro,nosuid,nodev,relatime shared:5 master:2 - fuse.ocimount ocimount:/img\040x ro,user_id=0
37 22 0:40 / /mnt rw - tmpfs tmpfs rw
`
	got, err := parseMountinfo(strings.NewReader(table))
	if err != nil {
		t.Fatal(err)
	}
	want := []mountEntry{{"/", "ext4", "/dev/sda1"}, {`/tmp/a b\c`, "fuse.ocimount", "ocimount:/img x"}, {"/mnt", "tmpfs", "tmpfs"}}
	if len(got) != len(want) {
		t.Fatalf("parseMountinfo = %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("parseMountinfo line %d = %q, want %q", i, got[i], want[i])
		}
	}
	if _, err := parseMountinfo(strings.NewReader("1 2 3\n")); err == nil {
		t.Error("parseMountinfo accepted a malformed line")
	}
}

func TestDaemonArgs(t *testing.T) {
	t.Chdir(t.TempDir())
	os.Mkdir("img", 0o755) // a local image: its path is made absolute
	f := &flags{ref: "r", platform: "linux/amd64", cacheDir: "c", noCache: true, allowOther: true}
	args, err := daemonArgs(f, "img", "/mnt")
	if err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	want := []string{"--ref", "r", "--platform", "linux/amd64", "--cache-dir", filepath.Join(wd, "c"), "--no-cache",
		"-o", "allow_other", "-q", "--", filepath.Join(wd, "img"), "/mnt"}
	if strings.Join(args, " ") != strings.Join(want, " ") {
		t.Errorf("daemonArgs = %q, want %q", args, want)
	}
	// A registry reference stays one, with the flags that reach the registry.
	f = &flags{insecure: true, jobs: 2}
	if args, err = daemonArgs(f, "registry.example:5000/app:v1", "m"); err != nil {
		t.Fatal(err)
	}
	want = []string{"--insecure", "--jobs", "2", "-q", "--", "docker://registry.example:5000/app:v1", filepath.Join(wd, "m")}
	if strings.Join(args, " ") != strings.Join(want, " ") {
		t.Errorf("daemonArgs = %q, want %q", args, want)
	}
}

// mountedOn reports whether mnt is in this process's mount table.
func mountedOn(t *testing.T, mnt string) bool {
	t.Helper()
	m, err := findMount(mnt)
	if err != nil {
		t.Fatal(err)
	}
	return m != nil
}

// TestMountAndSignal mounts in this process, reads through the mount, and unmounts with a
// signal: the command must return nil and leave no mount. A second signal while a file is
// open detaches the busy mount.
func TestMountAndSignal(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipped: mounting needs root")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skipf("skipped: %v", err)
	}
	img := sample(t)
	for _, busy := range []bool{false, true} {
		t.Run(map[bool]string{false: "idle", true: "busy"}[busy], func(t *testing.T) {
			mnt := t.TempDir()
			sigs := make(chan os.Signal, 2)
			c, _, errOut := newCommand(sigs)
			done := make(chan error, 1)
			go func() { done <- c.run(context.Background(), []string{"--cache-dir", t.TempDir(), img, mnt}) }()
			deadline := time.Now().Add(20 * time.Second)
			for !strings.Contains(errOut.String(), "mounted on") {
				select {
				case err := <-done:
					t.Fatalf("run ended before the mount was ready: %v; stderr %q", err, errOut)
				default:
				}
				if time.Now().After(deadline) {
					t.Fatalf("no ready line after 20 s; stderr %q", errOut)
				}
				time.Sleep(10 * time.Millisecond)
			}
			if want := "ocimount: " + img + " mounted on " + mnt + " (4 entries)\n"; errOut.String() != want {
				t.Errorf("stderr = %q, want %q", errOut, want)
			}
			if b, err := os.ReadFile(filepath.Join(mnt, "link")); err != nil || string(b) != "hi\n" {
				t.Errorf("reading link through the mount = %q, %v", b, err)
			}
			var f *os.File
			if busy {
				var err error
				if f, err = os.Open(filepath.Join(mnt, "etc/motd")); err != nil {
					t.Fatal(err)
				}
				defer f.Close()
			}
			sigs <- syscall.SIGINT
			if busy {
				time.Sleep(500 * time.Millisecond) // the unmount fails, retried for ~300 ms
				sigs <- syscall.SIGTERM
			}
			var err error
			select {
			case err = <-done:
			case <-time.After(20 * time.Second):
				t.Fatal("run did not return 20 s after the signals")
			}
			if busy {
				if err == nil || !strings.Contains(err.Error(), "detached") {
					t.Errorf("run with a busy mount = %v, want an error saying it was detached", err)
				}
			} else if err != nil {
				t.Errorf("run = %v, want nil", err)
			}
			if mountedOn(t, mnt) {
				t.Errorf("%s is still mounted", mnt)
				syscall.Unmount(mnt, syscall.MNT_DETACH)
			}
		})
	}
}
