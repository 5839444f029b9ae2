package squashfs

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/ocirender/ocirender/index"
)

// xattrTable holds the key/value table and the xattr id table. Each distinct set (the index
// interns them, so one set is one slice) is written once; a value longer than a reference
// that was written before is stored as a reference to it.
type xattrTable struct {
	kv     *metaWriter
	ids    []byte // xattr id table entries: ref u64, count u32, size u32
	setID  map[*index.Xattr]uint32
	values map[string]uint64 // value -> reference of its first copy
	notice func(string)
	warned map[string]bool
}

func (x *xattrTable) init(c compressor, notice func(string)) {
	x.kv = newMetaWriter(c)
	x.setID = map[*index.Xattr]uint32{}
	x.values = map[string]uint64{}
	x.notice = notice
	x.warned = map[string]bool{}
}

func (x *xattrTable) count() int { return len(x.ids) / 16 }

// add records set (once) in the tables.
func (x *xattrTable) add(set []index.Xattr, path func() string) error {
	if len(set) == 0 {
		return nil
	}
	if _, ok := x.setID[&set[0]]; ok {
		return nil
	}
	le := binary.LittleEndian
	ref := x.kv.ref()
	var n, size uint32
	var buf []byte
	for _, a := range set {
		typ, name, ok := splitXattr(a.Name)
		if !ok {
			if !x.warned[a.Name] && x.notice != nil {
				x.notice(fmt.Sprintf("%s: xattr %q left out: squashfs holds only user., trusted. and security. xattrs", path(), a.Name))
			}
			x.warned[a.Name] = true
			continue
		}
		if len(name) > 0xffff || len(a.Value) > 0xffffffff {
			return fmt.Errorf("squashfs: %s: xattr %q too large", path(), a.Name)
		}
		buf = buf[:0]
		if vref, ok := x.values[a.Value]; ok {
			buf = le.AppendUint16(buf, typ|xattrOOL)
			buf = le.AppendUint16(buf, uint16(len(name)))
			buf = append(buf, name...)
			buf = le.AppendUint32(buf, 8)
			buf = le.AppendUint64(buf, vref)
			x.kv.write(buf)
			size += uint32(len(buf))
		} else {
			buf = le.AppendUint16(buf, typ)
			buf = le.AppendUint16(buf, uint16(len(name)))
			buf = append(buf, name...)
			x.kv.write(buf)
			if len(a.Value) > 8 {
				x.values[a.Value] = x.kv.ref()
			}
			buf = le.AppendUint32(buf[:0], uint32(len(a.Value)))
			buf = append(buf, a.Value...)
			x.kv.write(buf)
			size += uint32(4 + len(name) + 4 + len(a.Value))
		}
		n++
	}
	if n == 0 {
		x.setID[&set[0]] = noXattr
		return nil
	}
	x.setID[&set[0]] = uint32(x.count())
	x.ids = le.AppendUint64(x.ids, ref)
	x.ids = le.AppendUint32(x.ids, n)
	x.ids = le.AppendUint32(x.ids, size)
	return nil
}

// id is the xattr id of set, or noXattr.
func (x *xattrTable) id(set []index.Xattr) uint32 {
	if len(set) == 0 {
		return noXattr
	}
	return x.setID[&set[0]]
}

func splitXattr(full string) (typ uint16, name string, ok bool) {
	for typ, p := range xattrPrefixes {
		if rest, found := strings.CutPrefix(full, p); found {
			return uint16(typ), rest, true
		}
	}
	return 0, "", false
}
