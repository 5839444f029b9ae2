package squashfs_test

import "github.com/ocirender/ocirender/internal/treetest"

// The trees of these tests are built by internal/treetest.
type node = treetest.Node

var (
	dirN  = treetest.Dir
	regN  = treetest.Reg
	symN  = treetest.Sym
	hardN = treetest.Hard
	build = treetest.Build
	// expect is the tree a reader of the image must show.
	expect = treetest.SquashfsWant
)

const epoch1 = treetest.Epoch
