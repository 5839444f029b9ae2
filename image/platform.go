package image

import (
	"runtime"
	"strings"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// platform is a normalised os/arch/variant triple.
type platform struct {
	os, arch, variant string
}

func (p platform) String() string {
	s := p.os + "/" + p.arch
	if p.variant != "" {
		s += "/" + p.variant
	}
	return s
}

// parsePlatform reads "os/arch[/variant]"; "" is the host.
func parsePlatform(s string) (platform, error) {
	if s == "" {
		return normalizePlatform(runtime.GOOS, runtime.GOARCH, ""), nil
	}
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return platform{}, errorf(ErrInvalid, "bad platform %q: want os/arch[/variant]", s)
	}
	variant := ""
	if len(parts) == 3 {
		if parts[2] == "" {
			return platform{}, errorf(ErrInvalid, "bad platform %q: empty variant", s)
		}
		variant = parts[2]
	}
	return normalizePlatform(parts[0], parts[1], variant), nil
}

// ParsePlatform reads "os/arch[/variant]" ("" is the host's) as every part of ocirender
// does: with the spellings containerd folds normalised (x86_64 is amd64, aarch64 is arm64,
// plain arm is arm/v7, default variants are dropped). A malformed one is an ErrInvalid.
func ParsePlatform(s string) (v1.Platform, error) {
	p, err := parsePlatform(s)
	if err != nil {
		return v1.Platform{}, err
	}
	return v1.Platform{OS: p.os, Architecture: p.arch, Variant: p.variant}, nil
}

func platformOf(p *v1.Platform) platform {
	return normalizePlatform(p.OS, p.Architecture, p.Variant)
}

// normalizePlatform folds the spellings containerd folds: architecture
// aliases, and default variants (arm64 is v8, amd64 is v1, both written as
// no variant; 32-bit arm defaults to v7).
func normalizePlatform(os, arch, variant string) platform {
	os, arch, variant = strings.ToLower(os), strings.ToLower(arch), strings.ToLower(variant)
	if os == "macos" {
		os = "darwin"
	}
	switch arch {
	case "i386", "i686":
		arch, variant = "386", ""
	case "x86_64", "x86-64", "amd64":
		arch = "amd64"
		if variant == "v1" {
			variant = ""
		}
	case "aarch64", "arm64":
		arch = "arm64"
		if variant == "8" || variant == "v8" {
			variant = ""
		}
	case "armhf":
		arch, variant = "arm", "v7"
	case "armel":
		arch, variant = "arm", "v6"
	case "arm":
		switch variant {
		case "", "7":
			variant = "v7"
		case "5", "6", "8":
			variant = "v" + variant
		}
	}
	return platform{os: os, arch: arch, variant: variant}
}

// variantLevel reads "vN" as N for the architectures whose variants are
// ordered levels (a v7 arm CPU runs v6 code; an amd64 v3 CPU runs v2 code).
// Without a variant, amd64 is level 1 (arm64's only level is 8, written as
// no variant, and needs no ordering).
func variantLevel(arch, variant string) (int, bool) {
	if arch != "arm" && arch != "amd64" {
		return 0, false
	}
	if variant == "" {
		return 1, arch == "amd64"
	}
	if len(variant) != 2 || variant[0] != 'v' || variant[1] < '1' || variant[1] > '9' {
		return 0, false
	}
	return int(variant[1] - '0'), true
}

// rank says how well an index entry for have fits a request for want:
// 0 does not fit; an exact match ranks above an older variant level the
// wanted CPU also runs, and the nearer level ranks higher.
func (want platform) rank(have platform) int {
	if want.os != have.os || want.arch != have.arch {
		return 0
	}
	if want.variant == have.variant {
		return 100
	}
	w, okw := variantLevel(want.arch, want.variant)
	h, okh := variantLevel(have.arch, have.variant)
	if okw && okh && h < w {
		return 50 + h
	}
	return 0
}

// matchesConfig reports whether an image config fits want. Fields the config
// leaves empty fit anything; the variant is compared only when both have one.
func (want platform) matchesConfig(os, arch, variant string) bool {
	if os == "" && arch == "" {
		return true
	}
	have := normalizePlatform(os, arch, variant)
	if have.os != "" && have.os != want.os || have.arch != "" && have.arch != want.arch {
		return false
	}
	return variant == "" || want.rank(have) > 0
}

// isAttestation reports whether an index entry is a build attestation
// (BuildKit provenance, SBOM) rather than a runnable image.
func isAttestation(d *v1.Descriptor) bool {
	if d.Annotations["vnd.docker.reference.type"] == "attestation-manifest" {
		return true
	}
	return d.Platform != nil && d.Platform.OS == "unknown" && d.Platform.Architecture == "unknown"
}
