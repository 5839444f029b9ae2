// Command serve runs go-containerregistry's in-process registry on 127.0.0.1 with one image
// pushed, for `make demo`: serve LAYOUT REF REPO pushes the image of LAYOUT named REF as
// REPO (repo:tag), prints its reference on stdout and serves until it is killed.
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/ocirender/ocirender/internal/registrytest"
)

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: serve LAYOUT REF REPO")
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
		os.Exit(1)
	}
	go http.Serve(ln, registrytest.Handler())
	ref, err := registrytest.PushLayout(ln.Addr().String(), authn.Anonymous, os.Args[1], os.Args[2], os.Args[3])
	if err != nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
		os.Exit(1)
	}
	fmt.Println(ref)
	select {}
}
