// Command mkfixture writes the hand-made parts of the Debian oracle image
// that tests/mkimage.sh builds: layer tars that `umoci repack` cannot
// produce, and re-compressed copies of a finished image.
//
//	mkfixture layer NAME OUT.tar       write the uncompressed layer NAME
//	mkfixture recompress LAYOUT FROM TO SCHEME
//
// The layers are written for the exact lower state mkimage.sh prepares
// (paths under opt/oci); each entry says which rule it exercises. umoci
// 0.4.7 unpacks every entry here; constructs it refuses are listed at the
// end of this file and left to the unit tests.
package main

import (
	"fmt"
	"os"
	"sort"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "mkfixture:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return usage()
	}
	switch args[0] {
	case "layer":
		if len(args) != 3 {
			return usage()
		}
		build, ok := layers[args[1]]
		if !ok {
			return fmt.Errorf("unknown layer %q (have %v)", args[1], layerNames())
		}
		return os.WriteFile(args[2], build(), 0o644)
	case "recompress":
		if len(args) != 5 {
			return usage()
		}
		return recompress(args[1], args[2], args[3], args[4])
	}
	return usage()
}

func usage() error {
	return fmt.Errorf("usage: mkfixture layer NAME OUT.tar | mkfixture recompress LAYOUT FROM TO SCHEME (layers %v, schemes %v)",
		layerNames(), schemeNames())
}

func layerNames() []string {
	var names []string
	for n := range layers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
