package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// mountEntry is one line of /proc/self/mountinfo, the fields ocimount needs.
type mountEntry struct {
	Point  string // mount point, unescaped
	FSType string // "fuse.ocimount" for ours
	Source string
}

// parseMountinfo reads the mount table in the format of proc(5)'s mountinfo.
func parseMountinfo(r io.Reader) ([]mountEntry, error) {
	var out []mountEntry
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, f := range fields {
			if f == "-" && i >= 6 {
				sep = i
				break
			}
		}
		if len(fields) < 5 || sep < 0 || len(fields) < sep+3 {
			return nil, fmt.Errorf("mountinfo: malformed line %q", sc.Text())
		}
		out = append(out, mountEntry{Point: unescapeMount(fields[4]), FSType: fields[sep+1], Source: unescapeMount(fields[sep+2])})
	}
	return out, sc.Err()
}

// unescapeMount undoes the kernel's octal escapes of space, tab, newline and backslash.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b bytes.Buffer
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// findMount returns the innermost mount on mnt, or nil.
func findMount(mnt string) (*mountEntry, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	mounts, err := parseMountinfo(f)
	if err != nil {
		return nil, err
	}
	for i := len(mounts) - 1; i >= 0; i-- {
		if mounts[i].Point == mnt {
			return &mounts[i], nil
		}
	}
	return nil, nil
}

// canonical returns mnt as the mount table spells it: absolute, symlinks resolved in its
// parents (not in mnt itself, which may be a dead FUSE mount that cannot be looked at).
func canonical(mnt string) (string, error) {
	abs, err := filepath.Abs(mnt)
	if err != nil {
		return "", err
	}
	parent, err := filepath.EvalSymlinks(filepath.Dir(abs))
	if err != nil {
		return "", err
	}
	return filepath.Join(parent, filepath.Base(abs)), nil
}

// unmount unmounts the ocimount view on mnt: with umount(2) as root, else fusermount3 -u.
func unmount(mnt string) error {
	path, err := canonical(mnt)
	if err != nil {
		return fmt.Errorf("-u: %w", err)
	}
	m, err := findMount(path)
	if err != nil {
		return err
	}
	if m == nil {
		return fmt.Errorf("%s is not mounted", mnt)
	}
	if m.FSType != "fuse.ocimount" {
		return fmt.Errorf("%s is a %s mount, not an ocimount one", mnt, m.FSType)
	}
	if os.Geteuid() == 0 {
		if err := unix.Unmount(path, 0); err != nil {
			return fmt.Errorf("unmount %s: %w", mnt, err)
		}
		return nil
	}
	return fusermount("-u", path)
}

// detach unmounts mnt lazily: it disappears now, and goes away once nothing uses it.
func detach(mnt string) error {
	if os.Geteuid() == 0 {
		return unix.Unmount(mnt, unix.MNT_DETACH)
	}
	return fusermount("-u", "-z", mnt)
}

// fusermount runs fusermount3 (or fusermount) with args; its complaint becomes the error.
func fusermount(args ...string) error {
	bin, err := exec.LookPath("fusermount3")
	if err != nil {
		if bin, err = exec.LookPath("fusermount"); err != nil {
			return errors.New("fusermount3 is not installed (package fuse3)")
		}
	}
	var stderr bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return errors.New(msg)
		}
		return fmt.Errorf("%s: %w", bin, err)
	}
	return nil
}
