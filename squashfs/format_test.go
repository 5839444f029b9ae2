package squashfs

import (
	"encoding/binary"
	"testing"
)

// TestSuperblockRoundTrip: the writer's marshal and the reader's parseSuper are inverses,
// field by field, with the magic in front.
func TestSuperblockRoundTrip(t *testing.T) {
	sb := superblock{inodes: 1, mkfsTime: 2, blockSize: 3, fragments: 4, compression: 5, blockLog: 6,
		flags: 7, ids: 8, major: 9, minor: 10, rootInode: 11, bytesUsed: 12, idTable: 13,
		xattrIDTable: 14, inodeTable: 15, dirTable: 16, fragmentTable: 17, exportTable: 18}
	b := sb.marshal()
	if len(b) != superSize {
		t.Fatalf("marshal = %d bytes, want %d", len(b), superSize)
	}
	if m := binary.LittleEndian.Uint32(b); m != magic {
		t.Errorf("marshal starts with %#x, want the magic %#x", m, magic)
	}
	if got := parseSuper(b); got != sb {
		t.Errorf("parseSuper(marshal(%+v)) = %+v", sb, got)
	}
}

// TestDevRoundTrip: decodeDev undoes encodeDev for every major and minor squashfs holds
// (12 and 20 bits), sampled at their edges.
func TestDevRoundTrip(t *testing.T) {
	for _, major := range []uint32{0, 1, 8, 0xff, 0x100, 0xfff} {
		for _, minor := range []uint32{0, 1, 3, 0xff, 0x100, 0x12345, 0xfffff} {
			if gotMajor, gotMinor := decodeDev(encodeDev(major, minor)); gotMajor != major || gotMinor != minor {
				t.Errorf("decodeDev(encodeDev(%d, %d)) = %d, %d", major, minor, gotMajor, gotMinor)
			}
		}
	}
	// The kernel's layout: minor's low byte, then major, then minor's high bits.
	if got := encodeDev(8, 0x12345); got != 0x12300845 {
		t.Errorf("encodeDev(8, 0x12345) = %#x, want 0x12300845", got)
	}
}
