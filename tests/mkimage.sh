#!/bin/bash
# mkimage.sh [CACHE_DIR] -- build the Debian oracle image of the end-to-end tests.
#
# Output: an OCI layout CACHE_DIR/debian (path printed on stdout, logs on
# stderr) whose tags stack on each other:
#
#   base           debootstrap --variant=minbase bookworm, one umoci layer
#   edits          umoci layer: deletions, type replacements, hard links, xattrs,
#                  devices, special modes, long and odd names, big ids, mtimes,
#                  symlinks of every kind (see layer_edits)
#   rework         umoci layer: changes to what edits made (see layer_rework)
#   raw-links      hand-made layer (tests/internal/mkfixture): cross-layer hard
#                  links, explicit opaque markers, writes through symlinked
#                  parents, PAX/GNU long names, name cleaning, duplicates
#   raw-whiteouts  hand-made layer: whiteouts of subtrees, whiteout+recreate,
#                  missing parents, dir over symlink, file over dir
#   latest         umoci layer on top of the hand-made ones (see layer_latest)
#   recompressed   latest with every layer re-encoded: pigz -6, pigz -0, two gzip
#                  members, uncompressed tar, pigz -i, gzip with flushes
#   zstd           latest with zstd layers (umoci 0.4.7 cannot unpack zstd: the
#                  tests compare it with latest)
#
# umoci is the oracle: whatever `umoci unpack` makes of a tag is what
# ocirender must produce. Every tag but zstd is unpacked once here to prove it.
#
# Cached in CACHE_DIR (default $OCIRENDER_TEST_CACHE or /var/cache/ocirender-test):
#   rootfs/        the debootstrap tree, made once (delete it to refetch)
#   debian/        the layout, rebuilt when this script, the fixture code
#                  (internal/imagetest, tests/internal/mkfixture) or rootfs/
#                  changed (debian.stamp)
# Needs root, umoci, debootstrap, GNU tar, setfattr, mknod, pigz, zstd, go.
# OCIRENDER_DEBIAN_MIRROR overrides the mirror.
set -euo pipefail
umask 022
export LC_ALL=C

cache=${1:-${OCIRENDER_TEST_CACHE:-/var/cache/ocirender-test}}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
module=$(dirname "$here")
mirror=${OCIRENDER_DEBIAN_MIRROR:-http://deb.debian.org/debian}
started=$SECONDS

log() { printf '%s mkimage: %s\n' "$(date +%T)" "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

[ "$(id -u)" = 0 ] || die "must run as root (debootstrap, mknod, chown, security.* xattrs)"
for tool in umoci debootstrap tar setfattr mknod pigz zstd go flock; do
	command -v "$tool" >/dev/null || die "$tool not found"
done

mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
exec 9>"$cache/.lock"
flock 9

# (a) The Debian tree, fetched once.
if [ ! -d "$cache/rootfs" ]; then
	tmp=$cache/rootfs.tmp.$$
	rm -rf "$tmp"
	log "debootstrap --variant=minbase bookworm into $cache/rootfs (log: $cache/debootstrap.log)"
	debootstrap --variant=minbase bookworm "$tmp" "$mirror" >"$cache/debootstrap.log" 2>&1 ||
		die "debootstrap failed, see $cache/debootstrap.log"
	mv "$tmp" "$cache/rootfs"
fi

stamp=$(
	cat "${BASH_SOURCE[0]}" "$module"/internal/imagetest/*.go "$module"/tests/internal/mkfixture/*.go
	stat -c 'rootfs %i %Y' "$cache/rootfs"
	umoci --version
)
stamp=$(printf '%s' "$stamp" | sha256sum | cut -d' ' -f1)
if [ -f "$cache/debian/index.json" ] && [ "$(cat "$cache/debian.stamp" 2>/dev/null)" = "$stamp" ]; then
	log "up to date"
	echo "$cache/debian"
	exit 0
fi

work=$(mktemp -d "$cache/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
L=$work/debian
B=$work/bundle
R=$B/rootfs
O=opt/oci # relative to the rootfs: everything the tests add lives here

(cd "$module" && go build -o "$work/mkfixture" ./tests/internal/mkfixture) || die "cannot build mkfixture"

repack() { # TAG COMMENT
	log "repack $1: $2"
	umoci repack --refresh-bundle --history.comment "$2" --image "$L:$1" "$B" >&2
}

# rep N STR: STR repeated N times.
rep() { printf "%${1}s" '' | sed "s/ /$2/g"; }

# layer_edits: one umoci layer over Debian, every kind of entry umoci repack
# can express. umoci writes whiteouts itself for what is deleted.
layer_edits() {
	cd "$R"
	# Debian files deleted; a directory subtree deleted.
	rm etc/motd etc/issue.net
	rm -r usr/share/doc/apt
	# A directory deleted and recreated with other content and mode.
	rm -r etc/apt/apt.conf.d
	mkdir -m 0750 etc/apt/apt.conf.d
	echo 'APT::Install-Recommends "false";' >etc/apt/apt.conf.d/99ocirender
	# dir -> file, dir -> symlink, file -> dir.
	rm -r usr/share/doc/bash
	echo 'was a directory' >usr/share/doc/bash
	rm -r usr/share/doc/coreutils
	ln -s bash usr/share/doc/coreutils
	rm etc/debian_version
	mkdir etc/debian_version
	echo 12 >etc/debian_version/inner

	mkdir -p $O
	# Plain files: empty, incompressible (stored deflate blocks), zeros, text.
	mkdir -p $O/files/sub
	echo plain >$O/files/plain
	echo plain2 >$O/files/plain2
	: >$O/files/empty
	head -c 3M /dev/urandom >$O/files/random-3m
	head -c 16M /dev/zero >$O/files/zeros-16m
	seq 1 200000 >$O/files/seq
	echo 'in sub' >$O/files/sub/x

	# Hard links: a group of three, a group of two in a subdir, and a new
	# name for a file of the base layer.
	mkdir -p $O/hl/sub
	echo 'content of a' >$O/hl/a
	ln $O/hl/a $O/hl/b
	ln $O/hl/a $O/hl/c
	echo 'content of d' >$O/hl/sub/d
	ln $O/hl/sub/d $O/hl/sub/e
	ln usr/bin/true $O/hl/true-link

	# Targets the raw-links layer links to and then replaces.
	mkdir -p $O/replace
	for f in old1 old2 doomed; do echo "v1 of $f" >$O/replace/$f; done
	# Targets of metadata-only changes in rework.
	mkdir -p $O/meta
	for f in chmod-only chown-only xattr-only touch-only; do echo $f >$O/meta/$f; done
	setfattr -n user.comment -v original $O/meta/xattr-only

	# xattrs: binary security.capability (cap_net_raw+ep, v2), user.* on
	# files and a directory, trusted.* on a file and on a symlink.
	mkdir -p $O/xattr/dir
	printf '#!/bin/sh\nexit 0\n' >$O/xattr/cap
	chmod 0755 $O/xattr/cap
	setfattr -n security.capability -v 0sAQAAAgAgAAAAAAAAAAAAAAAAAAA= $O/xattr/cap
	echo user >$O/xattr/user
	setfattr -n user.comment -v hello $O/xattr/user
	setfattr -n user.bin -v 0sAP8AAQ== $O/xattr/user
	setfattr -n user.long -v "$(rep 1000 L)" $O/xattr/user
	setfattr -n user.dirattr -v yes $O/xattr/dir
	echo child >$O/xattr/dir/child
	echo trusted >$O/xattr/trusted
	setfattr -n trusted.ocirender -v 1 $O/xattr/trusted
	ln -s trusted $O/xattr/link
	setfattr -h -n trusted.link -v 0x00ff $O/xattr/link
	# umoci repack drops empty-valued xattrs ("disallowed by PAX standard").
	echo empty >$O/xattr/empty
	setfattr -n user.empty $O/xattr/empty

	# Devices and fifos.
	mkdir -p $O/dev
	mknod -m 0666 $O/dev/null c 1 3
	mknod -m 0660 $O/dev/loop0 b 7 0
	chgrp 6 $O/dev/loop0
	mknod -m 0600 $O/dev/bigminor c 511 70000
	mkfifo -m 0620 $O/dev/fifo

	# setuid/setgid/sticky on files and dirs, owned by root and by users.
	local m=$O/modes
	mkdir -p $m
	for f in suid sgid suid-sgid suid-user all-bits none; do echo $f >$m/$f; done
	chmod 4755 $m/suid
	chgrp 50 $m/sgid
	chmod 2755 $m/sgid
	chown 1000:1000 $m/suid-sgid
	chmod 6755 $m/suid-sgid
	chown 1000:1000 $m/suid-user
	chmod 4750 $m/suid-user
	chmod 7777 $m/all-bits
	chmod 0000 $m/none
	mkdir $m/sticky-dir $m/sgid-dir $m/all-dir $m/private $m/readonly
	for d in sticky-dir sgid-dir all-dir private readonly; do echo child >$m/$d/child; done
	chmod 1777 $m/sticky-dir
	chgrp 50 $m/sgid-dir
	chmod 2775 $m/sgid-dir
	chmod 7777 $m/all-dir
	chown -R 1000:1000 $m/private
	chmod 0700 $m/private
	chmod 0555 $m/readonly

	# Long names: 200 and 255 bytes, a 60-level path, 12 levels of 100 bytes.
	mkdir -p $O/long
	echo 200 >"$O/long/$(rep 200 n)"
	echo 255 >"$O/long/$(rep 255 m)"
	local p=$O/long/deep i
	for i in $(seq 60); do p=$p/d; done
	mkdir -p $p
	echo leaf >$p/leaf
	p=$O/long/wide
	for i in $(seq 12); do p=$p/$(rep 100 $((i % 10))); done
	mkdir -p "$p"
	echo leaf >"$p/leaf"

	# Odd names.
	mkdir -p $O/names
	local n
	for n in 'with space' $'new\nline' $'\xff\xfe' $'tab\there' 'é-utf8' 'back\slash' '-dash' '...' \
		'.hidden' 'trailing ' "quote\"s'" '*glob?[x]' 'semi;colon' '#hash' '~tilde' '%percent'; do
		printf '%s\n' "$n" >"$O/names/$n"
	done
	n=$'odd dir\n\xff'
	mkdir "$O/names/$n"
	echo inside >"$O/names/$n/child"
	ln -s $'new\nline' "$O/names/link to odd"

	# Owners above 65535, above the ustar octal limit, and near 2^32.
	mkdir -p $O/owners/dir/sub
	echo >$O/owners/big
	chown 100000:200000 $O/owners/big
	echo >$O/owners/huge
	chown 3000000:3000001 $O/owners/huge
	echo >$O/owners/max
	chown 4294967294:4294967294 $O/owners/max
	echo >$O/owners/dir/sub/child
	chown 70001:70002 $O/owners/dir/sub/child
	chown 70000:70000 $O/owners/dir $O/owners/dir/sub
	ln -s big $O/owners/link
	chown -h 80000:80000 $O/owners/link

	# mtimes. umoci writes whole seconds (Go's archive/tar default format),
	# so nanoseconds are only in the hand-made layers.
	mkdir -p $O/times/dir-ns
	echo >$O/times/dir-ns/child
	echo >$O/times/ns
	touch -d '2021-03-04 05:06:07.123456789' $O/times/ns
	echo >$O/times/before-1970
	touch -d '1960-01-01 00:00:00' $O/times/before-1970
	echo >$O/times/epoch
	touch -d @0 $O/times/epoch
	echo >$O/times/y2100
	touch -d '2100-01-01 00:00:00' $O/times/y2100
	ln -s ns $O/times/link
	touch -h -d '2018-01-01 00:00:00' $O/times/link
	touch -d '2019-05-05 05:05:05' $O/times/dir-ns

	# Symlinks of every kind.
	local s=$O/sym
	mkdir -p $s
	ln -s ../files/plain $s/rel
	ln -s /etc/hostname $s/abs
	ln -s nowhere $s/dangling
	ln -s loop2 $s/loop1
	ln -s loop1 $s/loop2
	ln -s self $s/self
	ln -s ../files $s/dir
	ln -s "$(rep 300 t)" $s/long-target
	ln -s $'\xff\xfe' $s/odd-target
	ln -s /opt/oci/tree/realdir $s/abs-dir
	ln -s ../../../../../../usr/share $s/escape
	ln -s ../files $s/dirlink

	# Directories the later layers replace, make opaque or write through.
	mkdir -p $O/tree/realdir $O/tree/via
	echo a >$O/tree/realdir/a
	echo old >$O/tree/via/old
	mkdir -p $O/opaque2/sub $O/opaque3/sub/deeper
	echo x >$O/opaque2/x
	echo y >$O/opaque2/sub/y
	echo gone >$O/opaque3/gone
	echo z >$O/opaque3/sub/deeper/z
	mkdir -p $O/dirs/to-file/sub $O/dirs/to-symlink
	echo a >$O/dirs/to-file/sub/a
	echo b >$O/dirs/to-symlink/b
	echo file >$O/dirs/file-to-dir
	cd - >/dev/null
}

# layer_rework: a second umoci layer changing what edits made.
layer_rework() {
	cd "$R"
	# dir -> symlink (raw-links then writes through it).
	rm -r $O/tree/via
	ln -s realdir $O/tree/via
	# Metadata-only changes: umoci writes the whole file again.
	chmod 0600 $O/meta/chmod-only
	chown 1234:1234 $O/meta/chown-only
	setfattr -n user.comment -v changed $O/meta/xattr-only
	touch -d '2022-02-02 02:02:02' $O/meta/touch-only
	# Hard links: a new inode under the first name (b and c keep the old
	# content), a write through one name (both names change), a name removed.
	rm $O/hl/a
	echo 'new content of a' >$O/hl/a
	echo more >>$O/hl/sub/d
	rm $O/hl/c
	# Type swaps: symlink -> dir, device -> file, fifo -> symlink, file -> fifo.
	rm $O/sym/dir
	mkdir $O/sym/dir
	echo inside >$O/sym/dir/inside
	rm $O/dev/null
	echo 'no longer a device' >$O/dev/null
	rm $O/dev/fifo
	ln -s null $O/dev/fifo
	rm $O/files/plain2
	mkfifo -m 0644 $O/files/plain2
	# An xattr removed; a setuid file given to another owner (chown clears
	# the bit on disk, so set it again).
	setfattr -x user.long $O/xattr/user
	chown 2000:2000 $O/modes/suid
	chmod 4755 $O/modes/suid
	# Deletions: half of the deep path, an odd name, a subtree of owned dirs.
	rm -r $O/long/deep/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d
	rm $O/names/$'new\nline'
	rm -r $O/owners/dir
	# A file deleted in edits comes back; a directory is renamed.
	echo 'motd is back' >etc/motd
	mv $O/files/sub $O/files/sub-renamed
	cd - >/dev/null
}

# layer_latest: a umoci layer over the hand-made ones, from a fresh unpack.
layer_latest() {
	cd "$R"
	rm $O/raw/dup
	echo latest >$O/latest.txt
	chmod 0700 $O/raw
	ln $O/raw/survivor $O/latest-hardlink
	rm -r usr/share/doc/dash
	setfattr -n user.latest -v 1 etc/hostname
	cd - >/dev/null
}

log "building $L"
umoci init --layout "$L" >&2
umoci new --image "$L:base" >&2
umoci unpack --image "$L:base" "$B" >&2
cp -a "$cache/rootfs/." "$R/"
repack base "debootstrap --variant=minbase bookworm"
layer_edits
repack edits "deletions, type replacements, links, xattrs, devices, modes, names, ids, mtimes, symlinks"
layer_rework
repack rework "changes to the edits layer"

for layer in raw-links raw-whiteouts; do
	"$work/mkfixture" layer "$layer" "$work/$layer.tar"
	from=$(if [ "$layer" = raw-links ]; then echo rework; else echo raw-links; fi)
	log "add-layer $layer"
	umoci raw add-layer --history.comment "hand-made $layer (tests/internal/mkfixture)" \
		--image "$L:$from" --tag "$layer" "$work/$layer.tar" >&2
done

rm -rf "$B"
umoci unpack --image "$L:raw-whiteouts" "$B" >&2
layer_latest
repack latest "changes over the hand-made layers"
rm -rf "$B"

"$work/mkfixture" recompress "$L" latest recompressed gzip-variants >&2
"$work/mkfixture" recompress "$L" latest zstd zstd >&2
umoci gc --layout "$L" >&2

# Prove that umoci unpacks every tag it can read, two at a time.
check() { # TAG
	umoci unpack --image "$L:$1" "$work/check-$1" >"$work/check-$1.log" 2>&1
	rm -rf "$work/check-$1"
}
tags=(base edits rework raw-links raw-whiteouts latest recompressed)
for ((i = 0; i < ${#tags[@]}; i += 2)); do
	pids=()
	for tag in "${tags[@]:i:2}"; do
		log "check: umoci unpack $tag"
		check "$tag" &
		pids+=($!)
	done
	for j in "${!pids[@]}"; do
		tag=${tags[i + j]}
		wait "${pids[j]}" || die "umoci cannot unpack $tag: $(tail -3 "$work/check-$tag.log")"
	done
done

rm -rf "$cache/debian.old"
if [ -d "$cache/debian" ]; then mv "$cache/debian" "$cache/debian.old"; fi
mv "$L" "$cache/debian"
rm -rf "$cache/debian.old"
echo "$stamp" >"$cache/debian.stamp"
log "done in $((SECONDS - started))s"
echo "$cache/debian"
