#!/bin/bash
# mkbuildah.sh [CACHE_DIR] -- build the buildah oracle images of the end-to-end tests.
#
# A second real builder beside umoci (mkimage.sh): buildah (rootful) builds six layers, each
# from a container of the previous image (`buildah from`, mount, change, commit), doing what
# real Dockerfiles do: deleting and re-creating directories, deleting a 255-byte name (a
# 259-byte ".wh." header), deleting a hard-link target, replacing a directory by a symlink
# and back, symlink loops, paths near 4096 bytes, files of 0, 1 and block±1 bytes, sparse
# files, xattrs, setuid/setgid, devices and fifos (see layer_*).
#
# It builds the same layers twice, with each storage driver, because they write deletions
# differently: vfs diffs two directory trees and writes one ".wh.NAME" per deleted child;
# overlay (podman's and buildah's default) writes ".wh..wh..opq" for a directory deleted and
# re-created. Both build at once.
#
# Output (path printed on stdout, logs on stderr): CACHE_DIR/buildah/ holding
#   layout/       OCI layout written by `buildah push oci:`, tags vfs and overlay (gzip),
#                 vfs-zstd and overlay-zstd (--compression-format zstd), vfs-chunked and
#                 overlay-chunked (zstd:chunked: zstd frames per file, skippable frames
#                 holding a table of contents). umoci 0.4.7 cannot unpack zstd, so the
#                 tests judge those by umoci's unpack of the gzip tag: the same layers,
#                 compressed otherwise.
#   skopeo/       OCI layout written by `skopeo copy` from layout:vfs, tag vfs
#   docker.tar    docker-archive (what `docker save` writes) by `skopeo copy` from
#                 layout:overlay, tag ocirender/buildah:overlay
# Rebuilt when this script or the tools' versions change (buildah.stamp). Needs root,
# buildah, skopeo, umoci, setfattr, mknod, flock; the overlay driver needs the kernel's
# overlayfs (without it only the vfs tags are built, and overlay.missing says why).
set -euo pipefail
umask 022
export LC_ALL=C

cache=${1:-${OCIRENDER_TEST_CACHE:-/var/cache/ocirender-test}}
started=$SECONDS

log() { printf '%s mkbuildah: %s\n' "$(date +%T)" "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

[ "$(id -u)" = 0 ] || die "must run as root (buildah storage, mknod, chown, security.* xattrs)"
for tool in buildah skopeo umoci setfattr mknod flock; do
	command -v "$tool" >/dev/null || die "$tool not found"
done

mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
exec 9>"$cache/.buildah.lock"
flock 9

stamp=$(
	cat "${BASH_SOURCE[0]}"
	buildah --version
	skopeo --version
	umoci --version
)
stamp=$(printf '%s' "$stamp" | sha256sum | cut -d' ' -f1)
if [ -f "$cache/buildah/layout/index.json" ] && [ "$(cat "$cache/buildah.stamp" 2>/dev/null)" = "$stamp" ]; then
	log "up to date"
	echo "$cache/buildah"
	exit 0
fi

out=$(mktemp -d "$cache/buildah.XXXXXX")
# buildah's storage lives under a short path: its diff walks absolute paths, and the deep
# path below must stay within PATH_MAX there too.
store=$(mktemp -d /tmp/obh.XXXX)
driver=vfs
bh() { buildah --root "$store/$driver" --runroot "$store/$driver.run" --storage-driver "$driver" "$@"; }
cleanup() {
	for driver in vfs overlay; do bh rm --all >/dev/null 2>&1 || true; done
	# containers/storage leaves its overlay home bind-mounted.
	awk -v s="$store" 'index($2, s) == 1 { print $2 }' /proc/mounts | sort -r | xargs -r -n1 umount -l
	rm -rf "$store" "$out"
}
trap cleanup EXIT

# rep N STR: STR repeated N times.
rep() { printf "%${1}s" '' | sed "s/ /$2/g"; }

# deep: the directory chain of the path near PATH_MAX, 19 components of 200 bytes (3818
# bytes with slashes); the file in it brings the path to 3989 bytes (overlay's storage
# path, under /tmp/obh.XXXX/overlay/overlay/ID/diff/, takes the rest of PATH_MAX).
deep() {
	local p="" i
	for i in $(seq 19); do p=$p$(rep 200 $((i % 10)))/; done
	printf '%s' "${p%/}"
}
W255=$(rep 255 W)
D255=$(rep 255 D)
U255=$(rep 127 é)x # 255 bytes of two-byte UTF-8 and one ASCII byte

layer_base() {
	mkdir -p etc tmp bin
	chmod 1777 tmp
	echo 'buildah oracle' >etc/issue
	# Sizes around the 4 KiB and 128 KiB block sizes, random (incompressible) bytes.
	mkdir sizes
	local n
	for n in 0 1 4095 4096 4097 131071 131072 131073 1048577; do head -c $n /dev/urandom >sizes/$n; done
	head -c 1M /dev/zero >sizes/zeros-1m
	seq 1 100000 >sizes/text
	# Sparse files: all hole, and data in the middle of holes.
	mkdir sparse
	truncate -s 32M sparse/hole
	truncate -s 16M sparse/mixed
	printf middle | dd of=sparse/mixed bs=1 seek=8388608 conv=notrunc status=none
	# Directories the later layers delete and re-create.
	mkdir -p churn/a/sub churn/b
	echo 1 >churn/a/f
	echo 2 >churn/a/sub/g
	echo 3 >churn/b/h
	# Names at NAME_MAX, ASCII and UTF-8, and odd ones.
	mkdir names
	echo w >"names/$W255"
	echo u >"names/$U255"
	mkdir "names/$D255"
	echo inside >"names/$D255/inside"
	for n in 'with space' $'new\nline' $'\xff\xfe' '.hidden' '-dash' "quote\"s'" 'é'; do
		printf '%s\n' "$n" >"names/$n"
	done
	# Hard links: a target with two more names; a pair.
	mkdir hl
	echo 'target content' >hl/target
	ln hl/target hl/link1
	ln hl/target hl/link2
	echo solo >hl/solo
	ln hl/solo hl/solo-link
	# A directory that becomes a symlink, a symlink that becomes a directory.
	mkdir -p swap/dir-to-link swap/real
	echo x >swap/dir-to-link/x
	echo r >swap/real/r
	ln -s real swap/link-to-dir
	# Symlinks: loops, self, relative, absolute, dangling, escaping.
	mkdir sym
	ln -s loop2 sym/loop1
	ln -s loop1 sym/loop2
	ln -s self sym/self
	ln -s ../sizes sym/up
	ln -s /etc/issue sym/abs
	ln -s nowhere sym/dangling
	ln -s ../../../../etc sym/escape
	# A path of 3989 bytes, made one directory at a time (mkdir -p takes it whole), with a
	# sibling the links layer deletes, and a branch halfway down that it replaces.
	(
		for c in $(deep | tr / ' '); do
			mkdir "$c"
			cd "$c"
		done
		echo deep >"$(rep 170 f)"
		echo doomed >"$(rep 150 x)"
	)
	mkdir -p "$(deep | cut -d/ -f1-10)/branch/sub"
	echo branch >"$(deep | cut -d/ -f1-10)/branch/sub/leaf"
	# xattrs: security.capability (cap_net_raw+ep), user.* and trusted.*.
	mkdir x
	printf '#!/bin/sh\n' >x/cap
	chmod 0755 x/cap
	setfattr -n security.capability -v 0sAQAAAgAgAAAAAAAAAAAAAAAAAAA= x/cap
	echo >x/user
	setfattr -n user.comment -v hello x/user
	setfattr -n user.bin -v 0sAP8AAQ== x/user
	echo >x/trusted
	setfattr -n trusted.ocirender -v 1 x/trusted
	# Modes and owners.
	mkdir modes
	for n in suid sgid none big-owner; do echo $n >modes/$n; done
	chmod 4755 modes/suid
	chgrp 50 modes/sgid
	chmod 2755 modes/sgid
	chmod 0000 modes/none
	chown 100000:200000 modes/big-owner
	mkdir modes/sticky
	chmod 1777 modes/sticky
	# Devices and fifos.
	mkdir dev
	mknod -m 0666 dev/null c 1 3
	mknod -m 0660 dev/loop0 b 7 0
	mkfifo -m 0620 dev/fifo
}

layer_delete() {
	# A directory deleted and re-created with other content.
	rm -r churn/a
	mkdir -m 0750 churn/a
	echo new >churn/a/new
	# A 255-byte file name and a 255-byte directory name deleted.
	rm "names/$W255"
	rm -r "names/$D255"
	# A hard-link target deleted: its other names keep the content.
	rm hl/target
	# dir -> symlink, symlink -> dir.
	rm -r swap/dir-to-link
	ln -s real swap/dir-to-link
	rm swap/link-to-dir
	mkdir swap/link-to-dir
	echo y >swap/link-to-dir/y
	# Metadata changes.
	chmod 0700 modes/suid
	setfattr -n user.comment -v changed x/user
}

layer_back() {
	# ... and back: symlink -> dir, dir -> symlink.
	rm swap/dir-to-link
	mkdir swap/dir-to-link
	echo back >swap/dir-to-link/x
	rm -r swap/link-to-dir
	ln -s real swap/link-to-dir
	# The whole churn tree deleted and re-created.
	rm -r churn
	mkdir -p churn/a
	echo third >churn/a/f
	# The deleted 255-byte name comes back; the UTF-8 one goes.
	echo again >"names/$W255"
	rm "names/$U255"
	# A new inode under the deleted hard-link target's name.
	echo 'new target' >hl/target
	rm "names/with space"
}

layer_links() {
	# A name of a surviving hard-link group deleted, another added to it.
	rm hl/link1
	ln hl/link2 hl/link3
	# A name at the bottom of the deep path deleted (a whiteout path of 3973 bytes), and a
	# branch halfway down replaced.
	local p
	p=$(deep)
	rm "$p/$(rep 150 x)"
	p=$(deep | cut -d/ -f1-10)
	rm -r "$p/branch"
	echo 'now a file' >"$p/branch"
	# Type swaps of special files.
	rm dev/fifo
	echo 'no longer a fifo' >dev/fifo
	rm dev/null
	ln -s loop0 dev/null
	rm sizes/1048577
	truncate -s 4M sparse/mixed
}

layer_modes() {
	chmod 4755 modes/suid
	chown 1000:1000 modes/sgid
	chmod 2755 modes/sgid
	chmod 6755 modes/none
	setfattr -x user.bin x/user
	mkfifo -m 0600 dev/newfifo
	mknod -m 0600 dev/bigminor c 511 70000
	rm sym/dangling
	ln -s loop1 sym/to-loop
}

layer_latest() {
	# Re-created directories again, now through a whole-subtree delete of a parent.
	rm -r churn
	mkdir churn
	echo latest >churn/latest
	echo latest >etc/latest
	rm "names/-dash" "names/.hidden"
	echo "$W255" >"names/$W255"
}

# build DRIVER: the six layers with that storage driver, pushed as tags DRIVER (gzip),
# DRIVER-zstd and DRIVER-chunked into $out/layout.d/DRIVER (each build its own layout: two pushes into one
# layout at once would race on index.json).
build() {
	driver=$1
	local img="" i name c m
	for i in "${!layers[@]}"; do
		name=${layers[i]}
		if [ -z "$img" ]; then
			c=$(bh from scratch)
		else
			c=$(bh from "$img")
		fi
		m=$(bh mount "$c")
		log "$driver: layer $((i + 1)): $name"
		(cd "$m" && "layer_$name")
		bh umount "$c" >/dev/null
		bh commit -q --format oci --iidfile "$store/$driver.iid" "$c" "ocirender-buildah-$driver:$name" >/dev/null
		img=$(cat "$store/$driver.iid")
		bh rm "$c" >/dev/null
	done
	log "$driver: push oci:$driver, oci:$driver-zstd and oci:$driver-chunked"
	bh push -q "$img" "oci:$out/layout.d/$driver:$driver" >&2
	bh push -q --compression-format zstd "$img" "oci:$out/layout.d/$driver:$driver-zstd" >&2
	bh push -q --compression-format zstd:chunked "$img" "oci:$out/layout.d/$driver:$driver-chunked" >&2
}

layers=(base delete back links modes latest)
mkdir "$out/layout.d"
build vfs >"$store/vfs.log" 2>&1 &
vfs=$!
drivers=(vfs)
if grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null; then
	build overlay >"$store/overlay.log" 2>&1 &
	overlay=$!
	drivers+=(overlay)
else
	echo "the kernel has no overlayfs: the overlay tags are not built" >"$out/overlay.missing"
	log "$(cat "$out/overlay.missing")"
fi
wait $vfs || die "buildah (vfs) failed: $(tail -5 "$store/vfs.log")"
cat "$store/vfs.log" >&2
if [ -n "${overlay:-}" ]; then
	wait "$overlay" || die "buildah (overlay) failed: $(tail -5 "$store/overlay.log")"
	cat "$store/overlay.log" >&2
fi

# One layout of all tags: skopeo copies each build's tags into it (blobs are shared).
for d in "${drivers[@]}"; do
	for tag in "$d" "$d-zstd" "$d-chunked"; do
		skopeo copy -q --preserve-digests "oci:$out/layout.d/$d:$tag" "oci:$out/layout:$tag" >&2
	done
done
rm -rf "$out/layout.d"
log "skopeo copy to an OCI layout and a docker-archive"
skopeo copy -q "oci:$out/layout:vfs" "oci:$out/skopeo:vfs" >&2
src=${drivers[-1]}
skopeo copy -q "oci:$out/layout:$src" "docker-archive:$out/docker.tar:ocirender/buildah:$src" >&2

for d in "${drivers[@]}"; do
	log "check: umoci unpack $d"
	umoci unpack --image "$out/layout:$d" "$out/check" >"$out/check.log" 2>&1 ||
		die "umoci cannot unpack the buildah image $d: $(tail -3 "$out/check.log")"
	rm -rf "$out/check" "$out/check.log"
done

rm -rf "$cache/buildah.old"
if [ -d "$cache/buildah" ]; then mv "$cache/buildah" "$cache/buildah.old"; fi
mv "$out" "$cache/buildah"
rm -rf "$cache/buildah.old"
echo "$stamp" >"$cache/buildah.stamp"
log "done in $((SECONDS - started))s"
echo "$cache/buildah"
