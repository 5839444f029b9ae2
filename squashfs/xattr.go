package squashfs

import (
	"encoding/binary"
	"fmt"
)

// Xattr is one extended attribute: the full name ("user.x") and the raw value.
type Xattr struct {
	Name, Value string
}

// Limits of the reader.
const (
	maxXattrCount = 1 << 16
	// maxXattrSet bounds the names and values of one set: out-of-line values let a few
	// bytes of table name the same 64 KiB value any number of times.
	maxXattrSet = 4 << 20
)

// Xattrs returns the extended attributes of in, in stored order; nil when it has none.
func (fs *FS) Xattrs(in *Inode) ([]Xattr, error) {
	if in.xattr == noXattr {
		return nil, nil
	}
	xs, err := fs.xattrs(in.xattr)
	if err != nil {
		return nil, fmt.Errorf("inode %#x: xattrs %d: %w", in.Ref, in.xattr, err)
	}
	return xs, nil
}

// loadXattrTable reads the header of the xattr id table.
func (fs *FS) loadXattrTable() error {
	fs.xattrOnce.Do(func() {
		at := fs.sb.xattrIDTable
		if at == noTable || at > fs.sb.bytesUsed || fs.sb.bytesUsed-at < 16 {
			fs.xattrErr = corrupt("an inode has xattrs, the image has no xattr table")
			return
		}
		var h [16]byte
		if err := fs.readAt(h[:], at); err != nil {
			fs.xattrErr = err
			return
		}
		fs.kvStart, fs.xattrIDs = binary.LittleEndian.Uint64(h[:]), binary.LittleEndian.Uint32(h[8:])
		if fs.kvStart >= at {
			fs.xattrErr = corrupt("xattr key/value table at %d, after its id table at %d", fs.kvStart, at)
		}
	})
	return fs.xattrErr
}

func (fs *FS) xattrs(id uint32) ([]Xattr, error) {
	if err := fs.loadXattrTable(); err != nil {
		return nil, err
	}
	if id >= fs.xattrIDs {
		return nil, corrupt("xattr id %d of %d", id, fs.xattrIDs)
	}
	var e [16]byte
	if err := fs.lookupEntry(fs.sb.xattrIDTable+16, uint64(id), e[:]); err != nil {
		return nil, err
	}
	le := binary.LittleEndian
	ref, count := le.Uint64(e[:]), le.Uint32(e[8:])
	if count > maxXattrCount {
		return nil, corrupt("%d xattrs in one set", count)
	}
	m, err := fs.kvAt(ref)
	if err != nil {
		return nil, err
	}
	out := make([]Xattr, 0, min(count, 64))
	total := 0
	var h [4]byte
	for range count {
		if err := m.read(h[:]); err != nil {
			return nil, err
		}
		typ, nameLen := le.Uint16(h[:]), int(le.Uint16(h[2:]))
		kind := typ &^ xattrOOL
		if int(kind) >= len(xattrPrefixes) {
			return nil, corrupt("xattr type %#x", typ)
		}
		name := make([]byte, len(xattrPrefixes[kind])+nameLen)
		copy(name, xattrPrefixes[kind])
		if err := m.read(name[len(xattrPrefixes[kind]):]); err != nil {
			return nil, err
		}
		vlen, err := m.u32()
		if err != nil {
			return nil, err
		}
		vm := m
		if typ&xattrOOL != 0 {
			if vlen != 8 {
				return nil, corrupt("xattr %q: out-of-line reference of %d bytes", name, vlen)
			}
			vref, err := m.u64()
			if err != nil {
				return nil, err
			}
			if vm, err = fs.kvAt(vref); err != nil {
				return nil, fmt.Errorf("xattr %q: %w", name, err)
			}
			if vlen, err = vm.u32(); err != nil {
				return nil, err
			}
		}
		if vlen > maxXattrSize {
			return nil, corrupt("xattr %q: value of %d bytes", name, vlen)
		}
		total += len(name) + int(vlen)
		if total > maxXattrSet {
			return nil, corrupt("xattr set of more than %d bytes", maxXattrSet)
		}
		value := make([]byte, vlen)
		if err := vm.read(value); err != nil {
			return nil, err
		}
		out = append(out, Xattr{Name: string(name), Value: string(value)})
	}
	return out, nil
}

// kvAt returns a reader of the xattr key/value table at reference ref.
func (fs *FS) kvAt(ref uint64) (*metaReader, error) {
	block, off := ref>>16, int(ref&0xffff)
	end := fs.sb.xattrIDTable
	if off >= metaSize || block >= end-fs.kvStart {
		return nil, corrupt("xattr reference %#x lies outside the key/value table", ref)
	}
	return fs.metaAt(fs.kvStart+block, off, end)
}
