package squashfs_test

import (
	"math/rand/v2"

	"github.com/ocirender/ocirender/internal/treetest"
)

// The trees of these tests (the writer's and the reader's) are built by internal/treetest.
type node = treetest.Node

var (
	dirN  = treetest.Dir
	regN  = treetest.Reg
	symN  = treetest.Sym
	hardN = treetest.Hard
	build = treetest.Build
	// expect is what a reader of our image of ix must show.
	expect = treetest.SquashfsWant
)

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

var capability = "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
